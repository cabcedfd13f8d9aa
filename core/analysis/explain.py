"""Why this prediction: Grad-CAM for CNNs, gradient × input for dense nets, and overlays."""
from __future__ import annotations

import weakref

import numpy as np

# Anchor colours of a perceptual "inferno"-like map: black → purple → orange → yellow.
_ANCHORS = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=float)
_GRAD_MODELS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # model -> (conv layer, grad model)


def last_conv_layer(model):
    """The last Conv2D layer of a model, or None for dense nets."""
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    return convs[-1] if convs else None


def method(model) -> str:
    """The saliency method used for this model."""
    return "Grad-CAM" if last_conv_layer(model) is not None else "gradient × input"


def _grad_model(model):
    """A model returning (last conv activations, logits), built once per model."""
    import keras

    if model not in _GRAD_MODELS:
        conv = last_conv_layer(model)
        _GRAD_MODELS[model] = keras.Model(model.inputs, [conv.output, model.outputs[0]])
    return _GRAD_MODELS[model]


def _normalise(heat: np.ndarray) -> np.ndarray:
    heat = np.maximum(heat, 0)
    top = heat.max()
    return (heat / top if top > 0 else heat).astype(np.float32)


def saliency(model, x: np.ndarray, class_index: int | None = None) -> np.ndarray:
    """Heat map in 0..1 at the input's height × width for one uint8 input (no batch axis)."""
    import tensorflow as tf

    xb = tf.convert_to_tensor(np.asarray(x, dtype=np.float32)[None])
    if last_conv_layer(model) is not None:
        with tf.GradientTape() as tape:
            conv_out, logits = _grad_model(model)(xb, training=False)
            c = int(tf.argmax(logits[0])) if class_index is None else class_index
            score = logits[:, c]
        grads = tape.gradient(score, conv_out)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # channel importance
        cam = tf.nn.relu(tf.reduce_sum(weights * conv_out, axis=-1))[0]
        size = np.asarray(x).shape[:2]
        heat = tf.image.resize(cam[..., None], size, method="bilinear")[..., 0].numpy()
        return _normalise(heat)
    with tf.GradientTape() as tape:
        tape.watch(xb)
        logits = model(xb, training=False)
        c = int(tf.argmax(logits[0])) if class_index is None else class_index
        score = logits[:, c]
    g = (tape.gradient(score, xb) * xb)[0].numpy()
    heat = np.abs(g).sum(-1) if g.ndim == 3 else np.abs(g)  # evidence for or against, both shown
    return _normalise(heat)


def colormap(heat: np.ndarray) -> np.ndarray:
    """Map 0..1 values to RGB uint8 with the anchor colour ramp."""
    pos = np.clip(heat, 0, 1) * (len(_ANCHORS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_ANCHORS) - 2)
    frac = (pos - lo)[..., None]
    return (_ANCHORS[lo] * (1 - frac) + _ANCHORS[lo + 1] * frac).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The image in grey with the heat map blended over it, RGB uint8."""
    img = np.asarray(image, dtype=np.float32)
    grey = img if img.ndim == 2 else img.mean(-1)
    base = np.repeat(grey[..., None], 3, -1)
    a = alpha * np.clip(heat, 0, 1)[..., None] ** 0.7  # weak evidence stays see-through
    return (base * (1 - a) + colormap(heat).astype(np.float32) * a).clip(0, 255).astype(np.uint8)
