"""Runs and Share pages: download a model exported to other runtimes, each export's checks shown beside it."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import streamlit as st

from core.export import exporter, formats
from core.store import runs

PENDING = "export_pending"  # session key: {(model path, format): time clicked} for builds not finished yet
DONE = "export_done"  # session key: a plain dict the build threads mark (they have no Streamlit context)
BUILT = "export_built"  # session key: {(model path, format, mtime)} whose zip sits in the cache
POLL_SECONDS = 1
TIMEOUT = 600  # s for one export process (a loaded 2-core machine: about a minute at worst seen)
GIVE_UP_SECONDS = TIMEOUT + 60  # a build that never reports back stops the polling after this
ROOT = Path(__file__).resolve().parent.parent


@st.cache_data(max_entries=6, show_spinner=False)  # a few MB each; keyed by the model file and its mtime
def _zip_bytes(model_path: str, mtime: float, name: str, runs_dir: str, spec: str) -> bytes:
    """Export, check and zip one format in a `python -m core export` process; a failure zips its reason.

    A process of its own, not a thread: Streamlit clears Keras's session after every script run (each
    fragment tick), and TensorFlow deadlocks when that meets ops running in another thread.
    """
    with tempfile.TemporaryDirectory(prefix="export-ui-") as out:
        cmd = [sys.executable, "-m", "core", "export", "--model", spec, "--format", name, "--out", out, "--json",
               "--runs-dir", runs_dir]
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        except subprocess.TimeoutExpired:
            return _failure(f"the export took longer than {TIMEOUT} s")
        results = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        if results and results[0]["ok"]:
            return Path(results[0]["zip"]).read_bytes()
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    return _failure(results[0]["error"] if results else errors[-1][7:] if errors else f"exit {proc.returncode}")


def _failure(reason: str) -> bytes:
    """A zip holding only why the export failed (the download's file name is fixed before the click)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("EXPORT_FAILED.txt", reason + "\n")
    return buf.getvalue()


def _spec(run: runs.Run) -> str:
    """The model as `python -m core --model` resolves it."""
    return run.id if run.bundled else str(run.model_file or run.path)


def _builder(run: runs.Run, name: str, done: dict):
    """The download's data callable: runs on Streamlit's download thread when the button is clicked."""
    path, mtime, runs_dir = str(run.model_path), run.model_path.stat().st_mtime, str(runs.default_runs_dir())
    spec = _spec(run)

    def build() -> bytes:
        try:
            return _zip_bytes(path, mtime, name, runs_dir, spec)
        finally:
            done[(path, name)] = True  # a plain dict: this thread has no Streamlit session
    return build


def _mark(key: tuple) -> None:
    st.session_state.setdefault(PENDING, {})[key] = time.time()
    st.session_state.setdefault(DONE, {}).pop(key, None)


def check_text(result: dict | None) -> str:
    """One caption line for a format's recorded check."""
    if not result:
        return "Built and checked when you click (a few seconds to a minute)."
    if not result.get("ok"):
        return f":red[✗ {result.get('error', 'failed')}]"
    if result.get("unchecked"):
        return f"✓ exported, {result['unchecked']} · {result['bytes'] / 1e6:.2f} MB ({result['exported_at']})"
    return (f"✓ top-1 agreement **{result['top1_agreement']:.1%}** · max |Δp| {result['max_abs_dprob']:.1g} · "
            f"{result['bytes'] / 1e6:.2f} MB · {result['latency_ms']:.2f} ms/image "
            f"({result['n']} test images, {result['exported_at']})")


def _rows(run: runs.Run, polling: bool) -> None:
    pending, done = st.session_state.setdefault(PENDING, {}), st.session_state.setdefault(DONE, {})
    built = st.session_state.setdefault(BUILT, set())
    path, mtime = str(run.model_path), run.model_path.stat().st_mtime
    if any(p == path for p, _ in pending) != polling:  # start or stop polling: only a full rerun sets the timer
        st.rerun(scope="app")
    for key in [k for k in pending if k in done or time.time() - pending[k] > GIVE_UP_SECONDS]:
        pending.pop(key)
        if done.pop(key, None):
            built.add((*key, mtime))
    checks = exporter.stored_checks(run)
    for name, fmt in formats.FORMATS.items():
        c1, c2 = st.columns([1, 3], vertical_alignment="center")
        failed = name in checks and not checks[name].get("ok")
        why = fmt.missing()  # a runtime this machine lacks (the web page: ONNX Runtime Web from npm)
        if (path, name, mtime) in built:
            # the built zip as plain data: Streamlit's files are content-addressed, so this keeps the file the
            # click produced alive (an unreferenced one is dropped after two reruns, before a slow browser fetches)
            data, click = _zip_bytes(path, mtime, name, str(runs.default_runs_dir()), _spec(run)), "ignore"
        else:
            data, click = _builder(run, name, done), _mark
        c1.download_button(f"{fmt.title}", data, file_name=f"{run.id}-{name}.zip", mime="application/zip",
                           icon=":material/download:", key=f"export_{name}", on_click=click,
                           args=((path, name),) if click is _mark else None, disabled=failed or bool(why),
                           width="stretch")
        c2.caption(":orange[Building and checking…]" if (path, name) in pending
                   else f":orange[{fmt.title} {why}]" if why else check_text(checks.get(name)))


@st.fragment
def _still(run: runs.Run) -> None:
    _rows(run, polling=False)


@st.fragment(run_every=POLL_SECONDS)  # while a build runs: its checks appear when it is done
def _live(run: runs.Run) -> None:
    _rows(run, polling=True)


def export_section(run: runs.Run, expanded: bool = False) -> None:
    """Export the selected model: one zip per format (model, model card, predict.py), checked on export."""
    if not run.usable or not run.model_path.exists():
        return
    with st.expander("Export to other runtimes", icon=":material/deployed_code:", expanded=expanded):
        st.caption("Each zip holds the model, a model card (data, metrics, the exact input and preprocessing) and "
                   "a predict.py; the web page's is a folder to open in any browser or put on any static host "
                   "(index.html: draw, upload or camera, the model running in the browser). Every export is loaded "
                   f"back with its own runtime and compared with the Keras model on {exporter.CHECK_IMAGES} test "
                   "images (the web page in headless Chromium).")
        path = str(run.model_path)
        polling = any(p == path for p, _ in st.session_state.get(PENDING, {}))
        (_live if polling else _still)(run)
