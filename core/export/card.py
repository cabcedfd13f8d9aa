"""What ships beside an exported model: a Markdown model card and a minimal predict.py for its format."""
from __future__ import annotations

# The preprocessing the app applies (core/analysis/inference.py), cut down to what a standalone script needs:
# numpy and Pillow only. Grayscale models get MNIST-style centring, colour models a plain resize.
PREDICT_COMMON = '''\
"""Classify images with this exported model ({title}): python predict.py IMAGE [IMAGE ...]

Needs: pip install numpy pillow {requires}
"""
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent
CLASSES = {classes!r}
INPUT_SHAPE = {shape!r}  # one image, without the batch axis; float32 holding raw 0-255 pixels
INK_BOX = {box!r}  # grayscale: the ink is fitted into a box this many pixels wide (MNIST: 20 of 28)


def mnist_style(img):
    """Bright ink on black, cropped to the ink, fitted into INK_BOX, centre of mass in the middle."""
    g = np.asarray(img.convert("L"), np.float32)
    if img.mode in ("LA", "RGBA") and np.median(np.asarray(img.getchannel("A"))[[0, -1]]) < 128:
        g = np.asarray(img.getchannel("A"), np.float32)  # transparent background: what was painted is ink
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 127.5:  # dark pen on light paper: flip to MNIST's white on black
        g, border = 255 - g, 255 - border
    g = np.clip(g - np.median(border), 0, None)
    if g.max() <= 0:
        raise ValueError("nothing drawn")
    rows, cols = np.flatnonzero((g > 0.2 * g.max()).any(1)), np.flatnonzero((g > 0.2 * g.max()).any(0))
    crop = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape
    size, scale = INPUT_SHAPE[0], INK_BOX / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    patch = np.asarray(Image.fromarray(crop).resize((nw, nh), Image.BOX if scale < 1 else Image.BILINEAR))
    patch = np.clip(patch, 0, None)
    cy = (patch.sum(1) * np.arange(nh)).sum() / patch.sum()
    cx = (patch.sum(0) * np.arange(nw)).sum() / patch.sum()
    oy = min(max(int(np.floor((size - 1) / 2 - cy + 0.5)), 0), size - nh)
    ox = min(max(int(np.floor((size - 1) / 2 - cx + 0.5)), 0), size - nw)
    out = np.zeros((size, size), np.float32)
    out[oy:oy + nh, ox:ox + nw] = patch
    return np.round(out * (255.0 / out.max())).reshape(INPUT_SHAPE)


def load_input(path):
    """One image file -> a float32 array of INPUT_SHAPE, 0-255, as the model was trained on."""
    img = ImageOps.exif_transpose(Image.open(path))
    if len(INPUT_SHAPE) == 3 and INPUT_SHAPE[2] == 3:
        if img.mode in ("LA", "RGBA", "PA", "P"):  # transparency onto white, as the app does
            img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
        img = img.convert("RGB").resize((INPUT_SHAPE[1], INPUT_SHAPE[0]), Image.BILINEAR)
        return np.asarray(img, np.float32)
    return mnist_style(img if img.mode in ("L", "LA", "RGB", "RGBA") else img.convert("RGB"))


def softmax(z):
    z = np.asarray(z, np.float64) - np.max(z, axis=-1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(-1, keepdims=True)

'''

PREDICT_MAIN = '''

if __name__ == "__main__":
    for path in sys.argv[1:]:
        probs = softmax(logits(load_input(path)[None]))[0]  # the model outputs logits
        best = int(np.argmax(probs))
        print(f"{{path}}: {{CLASSES[best]}} ({{probs[best]:.1%}})")
'''


# the same loading and running, as predict.py code (HERE, np are defined there)
RUN_KERAS = '''import custom_layers  # noqa: F401  registers the app's augmentation layer (inactive at inference)
import keras

model = keras.models.load_model(HERE / "model.keras", compile=False)


def logits(x):
    return model.predict_on_batch(x)
'''
RUN_SAVEDMODEL = '''import tensorflow as tf

model = tf.saved_model.load(str(HERE / "saved_model"))  # keep it: its variables die with it


def logits(x):
    return model.serve(tf.constant(x, tf.float32)).numpy()
'''
RUN_TFLITE = '''from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path=str(HERE / "{file}"))
inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]


def logits(x):
    interpreter.resize_tensor_input(inp["index"], list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])
'''
RUN_ONNX = '''import onnxruntime as ort

session = ort.InferenceSession(str(HERE / "model.onnx"), providers=["CPUExecutionProvider"])


def logits(x):
    return session.run(None, {session.get_inputs()[0].name: x.astype(np.float32)})[0]
'''


def predict_py(fmt, classes, shape, box) -> str:
    """The predict.py for one format: shared preprocessing plus the format's own loading and running."""
    head = PREDICT_COMMON.format(title=fmt.title, requires=" ".join(fmt.requires), classes=list(classes),
                                 shape=tuple(shape), box=box)
    return head + fmt.runner + PREDICT_MAIN.format()


def _percent(v) -> str:
    return f"{v:.2%}" if isinstance(v, (int, float)) else "—"


def model_card(run, fmt, result: dict, info: dict) -> str:
    """Markdown: what the model is, what it was trained on, how well it does, and exactly what it expects."""
    data = run.meta.get("data") if isinstance(run.meta.get("data"), dict) else {}
    c = run.config
    shape, box, colour = info["input_shape"], info["ink_box"], len(info["input_shape"]) == 3
    lines = [
        f"# {info['dataset_title']} classifier — {fmt.title}",
        "",
        f"Exported by Classifier Lab from run `{run.id}`"
        + (" (a bundled model)" if run.bundled else "") + f" on {result['exported_at']}.",
        "",
        "## Training data",
        "",
        f"- Dataset: **{info['dataset_title']}** (`{run.dataset or 'unknown'}`)",
        f"- Source and version: {data.get('source') or info.get('source') or 'not recorded'}",
        f"- Split: {data.get('n_train', '?')} train / {data.get('n_val', 0)} validation / "
        f"{data.get('n_test', '?')} test images",
        f"- Architecture: `{c.get('arch', '?')}`, {run.meta.get('params', '?')} parameters, "
        f"{run.meta.get('epochs_done', '?')} epochs, optimizer {c.get('optimizer', '?')}, "
        f"learning rate {c.get('learning_rate', '?')}, augmentation {'on' if c.get('augment') else 'off'}",
        "",
        "## Metrics",
        "",
        f"- Test accuracy: **{_percent(run.meta.get('test_accuracy', info.get('accuracy')))}** "
        f"on {info.get('n_test', data.get('n_test', '?'))} test images",
        f"- Test loss: {run.meta.get('test_loss', float('nan')):.4f}" if isinstance(run.meta.get("test_loss"), float)
        else "- Test loss: not recorded",
        "",
        "| class | accuracy | test images |",
        "|---|---|---|",
        *(f"| {name} | {_percent(v['accuracy'])} | {v['support']} |" for name, v in info["per_class"].items()),
        "",
        "## Checked on export",
        "",
        *_checked(fmt, result),
        "",
        "## Input",
        "",
        f"- Shape `(batch, {', '.join(map(str, shape))})`, dtype **float32**, raw pixel values **0–255** "
        "(the rescaling to 0–1 is inside the model: do not divide by 255).",
        f"- {'RGB colour' if colour else 'Grayscale, one channel (no channel axis)'}; "
        "the output is one **logit** per class, in the order below: apply softmax for probabilities.",
        f"- Classes: {', '.join(f'`{n}`' for n in info['class_names'])}",
        "",
        "## Preprocessing",
        "",
    ]
    if colour:
        lines += ["1. Composite any transparency onto white; convert to RGB.",
                  f"2. Resize to {shape[1]}×{shape[0]} pixels (bilinear), no cropping, no normalisation."]
    else:
        lines += ["1. Convert to grayscale with bright ink on a black background (invert dark-on-light "
                  "drawings and photos; the background becomes 0).",
                  f"2. Crop to the ink and scale its longer side to {box} pixels (area averaging).",
                  f"3. Paste it into a black {shape[1]}×{shape[0]} frame with the ink's centre of mass at the "
                  "centre (MNIST's recipe), then stretch the values so the brightest pixel is 255."]
    if fmt.runner:
        lines += ["", "`predict.py` beside this card does exactly this: "
                  f"`pip install numpy pillow {' '.join(fmt.requires)}` then `python predict.py image.png`.", ""]
    else:  # the web page
        lines += ["", "The page does exactly this in the browser (`classifier.js`, the app's own code ported to "
                  "JavaScript). Open `index.html` in any current browser, from this folder (no server, no internet) "
                  "or from any static web host, and draw, upload a picture or use the camera; nothing leaves the "
                  "browser.", ""]
    return "\n".join(lines)


def _checked(fmt, result: dict) -> list[str]:
    """The card's lines on the check made on export (or why there was none)."""
    if result.get("unchecked"):
        return [f"Exported but {result['unchecked']}."]
    what = (f"This page was opened from its folder, the model run by {fmt.runtime}," if not fmt.runner
            else f"This {fmt.title} file was loaded back with {fmt.runtime}")
    size = (f"page size: {result.get('bytes', 0) / 1e6:.1f} MB (runtime and model included)" if not fmt.runner
            else f"model size: {result.get('bytes', 0) / 1e6:.2f} MB")
    return [f"{what} and compared with the Keras model on {result.get('n', '?')} test images:",
            "",
            f"- top-1 agreement: {_percent(result.get('top1_agreement'))}",
            f"- largest difference in any class probability: {result.get('max_abs_dprob', float('nan')):.2g}",
            f"- {size}; one image takes {result.get('latency_ms', 0):.2f} ms on the exporting machine"]
