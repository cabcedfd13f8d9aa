"""Predict's drawing pad: the canvas and the confidence bars in one Streamlit component, the active model running in
the browser (web/pad.html, pad.js and pad_worker.js over web/classifier.js and ONNX Runtime Web from npm).

Streamlit serves a component's folder, and nothing that a symlink leads out of it: the pad's files, the runtime and
the models' ONNX are copied (or hard-linked) into one folder in the user's cache, named after the pad's sources (so
two checkouts or versions never serve each other's files). The model is a file the pad fetches once, not an argument
of every rerun; the server hears from the pad once per pen lift, with the model input (784 bytes for MNIST), never
per stroke.
"""
from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import numpy as np
import streamlit as st
import streamlit.components.v1 as components

from core.export import webpage
from core.store import runs
from ui import browser_model

PAGE = {"index.html": "pad.html", "pad.js": "pad.js", "pad_worker.js": "pad_worker.js",
        "classifier.js": "classifier.js"}  # served name -> file in web/
HEIGHT = 360  # px until the pad says its own height


def _version() -> str:
    """A hash of the pad's sources and the runtime's version: the served folder's name."""
    h = hashlib.blake2b(digest_size=8)
    for name in PAGE.values():
        h.update((webpage.WEB / name).read_bytes())
    if webpage.missing() is None:
        h.update(webpage.ort_version().encode())
    return h.hexdigest()


FOLDER = browser_model.CACHE / "predict-pad" / _version()
try:  # Streamlit wants the folder to exist when the component is declared
    FOLDER.mkdir(parents=True, exist_ok=True)
    _pad, UNWRITABLE = components.declare_component("pad", path=str(FOLDER)), None
except OSError as e:
    _pad, UNWRITABLE = None, f"the pad's folder cannot be made in {FOLDER.parent}: {e.strerror or e}"


def _serve(src: Path, name: str, link: bool) -> None:
    """Put a file in the served folder once; `link`: a file never rewritten in place (the runtime, a model named by
    its content) gets a second name where the disk allows, not a copy of its megabytes."""
    dest = FOLDER / name
    same = dest.is_file() and dest.stat().st_size == src.stat().st_size
    if same and (link or dest.read_bytes() == src.read_bytes()):
        return
    if link:
        try:
            dest.unlink(missing_ok=True)
            os.link(src, dest)
            return
        except OSError:  # another disk, or no links there: a copy
            pass
    browser_model.copy_atomic(src, dest)  # the pad's own files: an edit in web/ never changes a folder being served


@st.cache_resource(max_entries=16, show_spinner=False)
def _served(onnx: str) -> str:
    (FOLDER / "models").mkdir(parents=True, exist_ok=True)
    for name, source in PAGE.items():
        _serve(webpage.WEB / source, name, link=False)
    for name in webpage.RUNTIME:
        _serve(webpage.ORT / "dist" / name, name, link=True)
    _serve(Path(onnx), f"models/{Path(onnx).name}", link=True)
    return f"models/{Path(onnx).name}"


def model_url(run: runs.Run) -> tuple[str | None, str | None]:
    """(the address the pad loads the run's model from, None), or (None, why the model cannot run in the browser)."""
    why = webpage.missing()
    if why:
        return None, f"running the model in the browser {why}"
    if UNWRITABLE:
        return None, UNWRITABLE
    onnx, why = browser_model.onnx(run)
    if onnx is None:
        return None, f"this model cannot run in the browser ({why})"
    try:
        return _served(str(onnx)), None
    except OSError as e:
        return None, f"the browser's copy of the model cannot be written to {FOLDER}: {e.strerror or e}"


def pad(url: str, meta: dict, hint: str, key: str = "draw_pad"):
    """Mount the pad; what it last sent: None, {model, version, input, probs} after a pen lift, or {model, error}."""
    return _pad(model=url, meta=meta, hint=hint, runtime=FOLDER.name, key=key, default=None, height=HEIGHT)


def model_input(value, url: str, shape: tuple, classes: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(the model input, the browser's probabilities) from the pad's value, if it is a pen lift for this model."""
    if not isinstance(value, dict) or value.get("model") != url or not isinstance(value.get("input"), str):
        return None
    try:
        raw = base64.b64decode(value["input"], validate=True)
        probs = np.asarray(value.get("probs"), np.float32)
    except (ValueError, TypeError):
        return None
    if len(raw) != int(np.prod(shape)) or probs.shape != (classes,):
        return None
    return np.frombuffer(raw, np.uint8).reshape(shape).copy(), probs
