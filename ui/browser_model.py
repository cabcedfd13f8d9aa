"""The active model as ONNX, for running it in the browser (Predict's drawing pad): converted once per model file by
the ONNX export's converter (core/export/formats.py) and kept outside the repository, in the user's cache folder."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

import streamlit as st

from core import config
from core.store import runs
from ui import state

CACHE = config.user_cache_dir()
_converting = threading.Lock()  # one conversion at a time: tf2onnx traces the model's graph


def _digest(path: Path) -> str:
    """The file's content hash: the same model under two paths (worktrees, copies) is converted once."""
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy under a temp name in dest's folder, then rename: another server reading dest never sees half a file."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


@st.cache_resource(max_entries=16, show_spinner="Preparing the model to run in this browser (once per model)…")
def _onnx(path: str, mtime: float, _run: runs.Run) -> tuple[Path | None, str | None]:
    from core.export.exporter import describe_failure
    from core.export.formats import FORMATS, Job

    dest = CACHE / "onnx" / f"{_digest(Path(path))}.onnx"
    if dest.is_file():
        return dest, None
    model = state._model(path, mtime)
    with _converting, tempfile.TemporaryDirectory(prefix="onnx-") as scratch:
        try:
            converted = Job(_run, model, Path(scratch)).onnx()
        except Exception as e:  # noqa: BLE001  converters raise anything: the page falls back to the server
            return None, describe_failure(FORMATS["onnx"], e, model)
        try:
            copy_atomic(converted, dest)
        except OSError as e:
            return None, f"its ONNX copy cannot be written to {dest.parent}: {e.strerror or e}"
    return dest, None


def onnx(run: runs.Run) -> tuple[Path | None, str | None]:
    """(the run's model as an ONNX file, None), or (None, why it cannot be converted); once per model file version."""
    return _onnx(str(run.model_path), run.model_path.stat().st_mtime, run)
