"""Inside a model: which layers to look at, and their activations for an input in one compiled call."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Layers that only reshape a conv's output into what the next conv sees: a Conv2D without activation is
# followed by BatchNorm and ReLU in cnn_strong, and the feature maps worth seeing are after the ReLU.
_FOLLOW = ("BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU")
_TRANSPARENT = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianNoise", "GaussianDropout")


@dataclass(frozen=True)
class Probe:
    """One watched layer output: a label for the page and whether it is a conv feature map or a vector."""
    name: str
    kind: str  # "conv" (H, W, C) or "dense" (units,)
    shape: tuple


def _producer(tensor):
    """The layer (operation) that made a symbolic tensor."""
    return tensor._keras_history.operation


def _consumers(model, layer) -> list:
    """Top-level layers of `model` that take `layer`'s output as an input."""
    return [other for other in model.layers for node in other._inbound_nodes
            if any(_producer(t) is layer for t in node.input_tensors)]


def _conv_outputs(model) -> list[tuple[str, object]]:
    """(label, tensor) per top-level Conv2D: after its BatchNorm/activation chain when it has one."""
    import keras

    found = []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        end = layer
        while True:  # follow conv → BN → ReLU while each step is the only consumer
            nxt = _consumers(model, end)
            if len(nxt) != 1 or type(nxt[0]).__name__ not in _FOLLOW:
                break
            end = nxt[0]
        label = layer.name if end is layer else f"{layer.name} → {end.name}"
        found.append((label, end.output))
    return found


def penultimate(model):
    """(label, tensor) of the last hidden layer: the input of the final Dense, Dropout skipped; or None."""
    import keras

    op = _producer(model.outputs[0])
    while not isinstance(op, keras.layers.Dense):  # e.g. a softmax Activation after the logits
        if not isinstance(op, keras.layers.Layer) or len(op._inbound_nodes) != 1 or \
                len(op._inbound_nodes[0].input_tensors) != 1:
            return None
        op = _producer(op._inbound_nodes[0].input_tensors[0])
    tensor = op.input
    while type(_producer(tensor)).__name__ in _TRANSPARENT:  # identical values at inference
        tensor = _producer(tensor).input
    if len(tensor.shape) != 2 or not _learned(tensor):
        return None  # e.g. Flatten → Dense: the "hidden layer" would be the pixels themselves
    return _producer(tensor).name, tensor


def _learned(tensor) -> bool:
    """Whether a layer with weights lies between the model's input and this tensor."""
    seen, todo = set(), [tensor]
    while todo:
        op = _producer(todo.pop())
        if id(op) in seen:
            continue
        seen.add(id(op))
        if getattr(op, "weights", None):
            return True
        todo += [t for node in getattr(op, "_inbound_nodes", []) for t in node.input_tensors]
    return False


class Inspector:
    """A sub-model returning every conv block's feature maps, the last hidden layer and the logits."""

    def __init__(self, model):
        import keras

        outputs, self.probes = [], []
        for label, tensor in _conv_outputs(model):
            outputs.append(tensor)
            self.probes.append(Probe(label, "conv", tuple(tensor.shape[1:])))
        last = penultimate(model)
        if last is not None:
            outputs.append(last[1])
            self.probes.append(Probe(last[0], "dense", tuple(last[1].shape[1:])))
        self.model = keras.Model(model.inputs, [*outputs, model.outputs[0]]) if outputs else None

    def __call__(self, x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """Activations per probe (no batch axis) and the logits, for one input (no batch axis)."""
        if self.model is None:
            return [], np.zeros(0, np.float32)
        # one compiled graph call (traced once), as core.analysis.inference.predict does: eager calls are far slower
        out = self.model.predict_on_batch(np.asarray(x, np.float32)[None])
        return [np.asarray(a)[0] for a in out[:-1]], np.asarray(out[-1])[0]


def inspector(model) -> Inspector | None:
    """An Inspector for the model, or None when its graph can't be opened (e.g. an unbuilt subclass)."""
    try:
        return Inspector(model)
    except (AttributeError, ValueError, TypeError):
        return None


def mosaic(maps: np.ndarray, gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, C) feature maps tiled into one near-square grid, NaN between tiles, and each cell's channel
    (-1 in the gaps): one heatmap draws a whole layer, far cheaper than a subplot per channel."""
    h, w, c = maps.shape
    cols = int(np.ceil(np.sqrt(c)))
    rows = int(np.ceil(c / cols))
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    channel = np.full(grid.shape, -1, np.int32)
    for k in range(c):
        r, q = divmod(k, cols)
        grid[r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w] = maps[..., k]
        channel[r * (h + gap): r * (h + gap) + h, q * (w + gap): q * (w + gap) + w] = k
    return grid, channel
