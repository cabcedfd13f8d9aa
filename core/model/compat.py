"""Loading a .keras file safely, models that do or don't fit a dataset, and importing a user's own .keras into a run folder."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core.store.runs import Run, RunError, RunStatus, default_runs_dir, load_run, new_run_dir, now, write_status

# fixed-size datasets: the input shape and class count a model needs to be used with them
FIXED_INPUTS = {"mnist": ((28, 28), 10), "fashion_mnist": ((28, 28), 10)}
FLOWERS_INPUT = ((180, 180, 3), 5)  # the app loads flowers at its default 180×180


def load_model(path: Path):
    """Load a .keras file in safe mode (no arbitrary code); clear errors for bad files."""
    import keras

    import core.model.layers  # noqa: F401  registers custom layers before deserialising

    path = Path(path)
    if not path.is_file():
        raise RunError(f"{path}: model file not found")
    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as e:  # Keras raises many types for a bad zip, config or weights file
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else e.__class__.__name__
        raise RunError(f"{path.name}: not a usable Keras model ({first})") from None


# --- models that do or don't fit a dataset, and importing a user's own .keras file --------------------------

def shape_text(shape) -> str:
    """(28, 28) -> '28×28'; unknown sizes as '?'."""
    dims = tuple(shape)
    return "×".join("?" if d is None else str(d) for d in dims) if dims else "a scalar"


def model_io(model) -> tuple[tuple, int]:
    """A Keras model's input shape (no batch axis) and number of outputs; RunError if it has several."""
    if len(getattr(model, "inputs", None) or [None]) != 1 or len(getattr(model, "outputs", None) or [None]) != 1:
        raise RunError("the model has several inputs or outputs; Classifier Lab needs one image in, "
                       "one score per class out")
    shape, out = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    if len(out) != 1 or not isinstance(out[0], int) or out[0] < 2:
        raise RunError(f"the model's output has shape {shape_text(out)}; it must be one score per class")
    return shape, out[0]


def image_problem(shape) -> str | None:
    """Why an input shape cannot be made from an image (H×W, H×W×1 or H×W×3), or None."""
    shape = tuple(shape)
    ok = (len(shape) in (2, 3) and all(isinstance(d, int) and d > 0 for d in shape)
          and (len(shape) == 2 or shape[2] in (1, 3)))
    return None if ok else (f"the model takes inputs of shape {shape_text(shape)}, not an image "
                            "(H×W grayscale, H×W×1 or H×W×3 colour)")


def fit_problem(shape, n_out: int, data_shape, n_classes: int, name: str) -> str | None:
    """One line on why a model (input shape, outputs) does not fit a dataset, or None when it does."""
    if tuple(shape) != tuple(data_shape):
        return (f"the model takes inputs of shape {shape_text(shape)}, but {name} images are "
                f"{shape_text(data_shape)}")
    if int(n_out) != int(n_classes):
        return f"the model has {n_out} outputs, but {name} has {n_classes} classes"
    return None


def run_problem(run: Run, model) -> str | None:
    """Why a loaded model cannot be used as its run describes it (shape, classes), or None."""
    try:
        shape, n_out = model_io(model)
    except RunError as e:
        return str(e)
    problem = image_problem(shape)
    data = run.meta.get("data") if isinstance(run.meta.get("data"), dict) else {}
    if problem is None and data.get("input_shape"):
        names = data.get("class_names") or []
        problem = fit_problem(shape, n_out, tuple(data["input_shape"]), len(names) or n_out,
                              run.dataset or "its dataset")
    return problem


def import_targets(shape, n_out: int) -> list[str]:
    """The datasets a model of this input shape and output count can be used with."""
    shape = tuple(shape)
    if image_problem(shape):
        return []
    targets = [name for name, (s, n) in FIXED_INPUTS.items() if shape[:2] == s and shape[2:] in ((), (1,))
               and n_out == n]
    if len(shape) == 3 and shape[2] == 3:  # named datasets only: never a server path (the "folder" dataset)
        from core.data import owndata, registry
        targets += (["flowers"] if (shape, n_out) == FLOWERS_INPUT else []) + \
            [name for name in registry.list_datasets() if len(owndata.classes(name)) == n_out]
    return targets


def _display_name(name: str | None) -> str:
    """An uploaded file's name for messages only: its last component, printable, short."""
    base = str(name or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable()).strip()[:80]
    return base or "upload"


def inspect_model(data: bytes, runs_dir: Path | None = None, name: str | None = None) -> tuple[tuple, int, list[str]]:
    """Load uploaded .keras bytes in safe mode: (input shape, outputs, datasets it fits); RunError if unusable."""
    model, _ = _load_upload(data, Path(runs_dir or default_runs_dir()), name, keep=False)
    try:
        shape, n_out = model_io(model)
    except RunError as e:
        raise RunError(f"{_display_name(name)}: {e}") from None
    targets = import_targets(shape, n_out)
    if not targets:
        problem = image_problem(shape) or (f"the model takes {shape_text(shape)} inputs with {n_out} outputs")
        raise RunError(f"{_display_name(name)}: {problem}; Classifier Lab uses 28×28 grayscale models with 10 "
                       "classes (MNIST, Fashion-MNIST) or H×W×3 colour models (Flowers, or an own dataset with one "
                       "class per output, made on the My data page)")
    return shape, n_out, targets


def _load_upload(data: bytes, runs_dir: Path, name: str | None, keep: bool):
    """Write the bytes to a hidden temp file in the runs folder and load it; (model, temp path or None)."""
    label = _display_name(name)
    if not data:
        raise RunError(f"{label}: empty file (0 bytes)")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=runs_dir, prefix=".import-", suffix=".keras")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError as e:
        raise RunError(f"cannot write to the runs folder {runs_dir}: {e.strerror or e}") from None
    try:
        try:
            model = load_model(Path(tmp))
        except RunError as e:
            raise RunError(str(e).replace(str(tmp), label).replace(Path(tmp).name, label)) from None
    except BaseException:
        os.unlink(tmp)
        raise
    if not keep:
        os.unlink(tmp)
        return model, None
    return model, Path(tmp)


def import_model(data: bytes, dataset: str, runs_dir: Path | None = None, name: str | None = None,
                 data_path: str | None = None, class_names=None) -> Run:
    """Save an uploaded .keras model as a new finished run for `dataset`; RunError if it doesn't load or fit.

    The run folder's name is generated (like a trained run's); the uploaded file name is never used as a path.
    """
    import keras

    runs_dir = Path(runs_dir or default_runs_dir())
    model, tmp = _load_upload(data, runs_dir, name, keep=True)
    path = None
    try:
        shape, n_out = model_io(model)
        targets = import_targets(shape, n_out)
        if dataset not in targets:
            problem = image_problem(shape)
            if problem is None and dataset in FIXED_INPUTS:
                want, n = FIXED_INPUTS[dataset]
                problem = fit_problem(shape[:2] if shape[2:] == (1,) else shape, n_out, want, n, dataset)
            if problem is None:
                problem = f"it does not fit {dataset} (input {shape_text(shape)}, {n_out} outputs)"
            fits = f"; it fits: {', '.join(targets)}" if targets else ""
            raise RunError(f"{_display_name(name)}: {problem}{fits}")
        path = new_run_dir(runs_dir, dataset, "imported")
        if len(shape) == 3 and shape[2] == 1 and dataset in FIXED_INPUTS:
            # the datasets hold H×W arrays: put a channel axis in front, so every page can feed it as is
            inputs = keras.Input(shape[:2], name="pixels")
            wrapped = keras.Model(inputs, model(keras.layers.Reshape((*shape[:2], 1))(inputs)),
                                  name=f"imported_{model.name}")
            wrapped.save(path / ".model.tmp.keras")
            os.replace(path / ".model.tmp.keras", path / "model.keras")
            os.unlink(tmp)
            shape = shape[:2]
        else:
            os.replace(tmp, path / "model.keras")
        names = [str(c) for c in class_names] if class_names is not None and len(class_names) == n_out else None
        if names is None and dataset in FIXED_INPUTS:
            from core.data.datasets import FASHION_CLASSES
            names = list("0123456789") if dataset == "mnist" else list(FASHION_CLASSES)
        meta = {"id": path.name, "created": now(), "imported_from": _display_name(name),
                "config": {"dataset": dataset, "arch": "imported", "data_path": data_path},
                "data": {"source": "imported", "class_names": names or [str(i) for i in range(n_out)],
                         "input_shape": list(shape)},
                "params": int(model.count_params())}
        write_status(path, RunStatus.FINISHED, meta)
        return load_run(path)
    except BaseException as e:
        if tmp.exists():
            os.unlink(tmp)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
        if isinstance(e, OSError):
            raise RunError(f"cannot save the model in {runs_dir}: {e.strerror or e}") from None
        raise
