"""The export formats: how each is written from a Keras model and loaded back with its own runtime (the registry)."""
from __future__ import annotations

import logging
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core import LabError
from core.model import compat

from core.store import runs
from core.export import webpage
from core.export.card import RUN_KERAS, RUN_ONNX, RUN_SAVEDMODEL, RUN_TFLITE

OPSET = 17  # ONNX opset: onnxruntime 1.16+ and every current browser/mobile runtime read it


class ExportError(LabError, RuntimeError):
    """A format that cannot hold this model; the message is one line for the user."""


@dataclass
class Job:
    """One export session: the model, its serving function and a scratch folder shared by the formats."""
    run: runs.Run
    model: object
    scratch: Path
    info: dict = field(default_factory=dict)  # the facts for the card (exporter.reference): classes, input, title
    _saved_model: Path | None = None
    _onnx: Path | None = None

    def serve(self):
        """The inference graph (training=False: augmentation and BatchNorm as at prediction time)."""
        import tensorflow as tf

        spec = tf.TensorSpec([None, *self.model.input_shape[1:]], tf.float32, name="pixels")
        return tf.function(lambda x: self.model(x, training=False), input_signature=[spec]), spec

    def saved_model(self) -> Path:
        """A SavedModel of the inference graph in the scratch folder (made once, the TFLite converters' input)."""
        if self._saved_model is None:
            self._saved_model = write_savedmodel(self, self.scratch / "saved_model_for_tflite")
        return self._saved_model

    def onnx(self) -> Path:
        """The model as ONNX in the scratch folder (converted once: the ONNX export and the web page share it)."""
        if self._onnx is None:
            folder = self.scratch / "onnx_model"
            folder.mkdir()
            self._onnx = _convert_onnx(self, folder / "model.onnx")
        return self._onnx


# --- writers: (job, folder) -> the artifact's path --------------------------------------------------------

def write_keras(job: Job, folder: Path) -> Path:
    """The run's own .keras file, as the Runs page has always offered it."""
    dest = folder / "model.keras"
    shutil.copyfile(job.run.model_path, dest)
    shutil.copyfile(Path(__file__).parents[1] / "model" / "layers.py", folder / "custom_layers.py")  # for loading elsewhere
    return dest


def write_savedmodel(job: Job, folder: Path) -> Path:
    """A TensorFlow SavedModel whose `serve` signature runs inference.

    Not model.export(): Keras 3.15 traces that without training=False, so this model's augmentation
    layers and BatchNorm statistics would run at serving time (and no converter takes the random ops).
    """
    import keras

    fn, spec = job.serve()
    archive = keras.export.ExportArchive()
    archive.track(job.model)
    archive.add_endpoint("serve", fn, input_signature=[spec])
    dest = folder / "saved_model"
    archive.write_out(str(dest), verbose=False)
    return dest


def _tflite(job: Job, folder: Path, quantise: bool) -> Path:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(job.saved_model()))
    # builtins only: a Select-TF-ops model needs the full TF runtime on the device, which defeats TFLite
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantise:  # dynamic range: int8 weights, float activations; no calibration data needed
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    dest = folder / ("model_int8.tflite" if quantise else "model.tflite")
    dest.write_bytes(converter.convert())
    return dest


def write_tflite(job: Job, folder: Path) -> Path:
    return _tflite(job, folder, quantise=False)


def write_tflite_int8(job: Job, folder: Path) -> Path:
    return _tflite(job, folder, quantise=True)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _convert_onnx(job: Job, dest: Path) -> Path:
    """ONNX through tf2onnx from the inference graph (Keras's own ONNX export has the training=None trace)."""
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx  # Keras's numpy-2 fixes for tf2onnx 1.17

    with warnings.catch_warnings():  # it probes np.object, which numpy 2 warns about
        warnings.simplefilter("ignore", FutureWarning)
        patch_tf2onnx()
    fn, spec = job.serve()
    errors, log = _Collect(), logging.getLogger("tf2onnx")
    log.addHandler(errors)
    try:  # tf2onnx logs unsupported ops and still writes a model no runtime can load: make that an error
        tf2onnx.convert.from_function(fn, [spec], opset=OPSET, output_path=str(dest))
    finally:
        log.removeHandler(errors)
    unsupported = [e for e in errors.lines if "is not supported" in e or "Unsupported ops" in e]
    if unsupported:
        raise ExportError("\n".join(unsupported))
    return dest


def write_onnx(job: Job, folder: Path) -> Path:
    return Path(shutil.copyfile(job.onnx(), folder / "model.onnx"))


def write_webpage(job: Job, folder: Path) -> Path:
    """The web page: index.html, the model (the ONNX export's) and ONNX Runtime Web; the folder is the page."""
    return webpage.build(folder, job.onnx(), job.info)


# --- runners: artifact path -> (uint8/float batch -> logits) ---------------------------------------------

def run_keras(path: Path):
    model = compat.load_model(path)
    return lambda x: np.asarray(model.predict_on_batch(x))


def run_savedmodel(path: Path):
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))  # kept referenced: its variables die with it
    return lambda x: loaded.serve(tf.constant(x)).numpy()


def run_tflite(path: Path):
    from ai_edge_litert.interpreter import Interpreter  # LiteRT: TF's own tf.lite.Interpreter is deprecated

    interpreter = Interpreter(model_path=str(path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def run(x):
        if tuple(interpreter.get_input_details()[0]["shape"]) != x.shape:
            interpreter.resize_tensor_input(inp["index"], list(x.shape))
            interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(out["index"]).copy()
    interpreter.allocate_tensors()
    return run


def run_onnx(path: Path):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


@dataclass(frozen=True)
class Format:
    """One registry entry: how a format is written, loaded back, and used from predict.py."""
    name: str
    title: str
    runtime: str  # what loads it back, for the card
    requires: tuple[str, ...]  # pip packages predict.py needs besides numpy and pillow
    write: Callable[[Job, Path], Path]
    load: Callable[[Path], Callable] | None  # artifact -> (float32 batch -> logits), in this process
    runner: str | None  # predict.py's loading code, defining logits(x); None: no predict.py (the web page)
    # formats that run elsewhere (the web page, in Chromium): (artifact, x, calls) -> (probabilities, one-image times in s)
    measure: Callable[[Path, np.ndarray, int], tuple[np.ndarray, list[float]]] | None = None
    unchecked: Callable[[], str | None] = lambda: None  # why this machine cannot check it (exported unchecked)
    missing: Callable[[], str | None] = lambda: None  # why this machine cannot build it (a runtime not installed)
    finish: Callable[[Path, str], None] | None = None  # (artifact, model card) -> the card shown inside it


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("keras", "Keras (.keras)", "Keras 3 (safe mode)", ("tensorflow", "keras"), write_keras, run_keras,
           RUN_KERAS),
    Format("savedmodel", "TensorFlow SavedModel", "tf.saved_model.load", ("tensorflow",), write_savedmodel,
           run_savedmodel, RUN_SAVEDMODEL),
    Format("tflite", "TFLite float32", "the LiteRT interpreter (ai-edge-litert)", ("ai-edge-litert",),
           write_tflite, run_tflite, RUN_TFLITE.format(file="model.tflite")),
    Format("tflite-int8", "TFLite int8 (dynamic range)", "the LiteRT interpreter (ai-edge-litert)",
           ("ai-edge-litert",), write_tflite_int8, run_tflite, RUN_TFLITE.format(file="model_int8.tflite")),
    Format("onnx", "ONNX", "onnxruntime", ("onnxruntime",), write_onnx, run_onnx, RUN_ONNX),
    Format("webpage", "Web page", "ONNX Runtime Web in headless Chromium", (), write_webpage, None, None,
           measure=webpage.measure, unchecked=webpage.unchecked, missing=webpage.missing, finish=webpage.add_card),
)}
