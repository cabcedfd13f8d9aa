"""The pretrained architecture: ImageNet EfficientNet-Lite0, frozen, and a small head trained on cached features.

The saved model is one ordinary end-to-end Keras model (pixels → resize → backbone → dropout → logits), so
Predict, Mistakes, Grad-CAM and export use it like any other. Training fits only its tail: the layers after
the frozen part, fed with the frozen part's outputs from core.model.features, computed once per image.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import InvalidValue
from core.model import efficientnet_lite as enet
from core.model import features

BLOCKS = len(enet.block_specs())


def cut_layer(fine_tune_blocks: int = 0) -> str:
    """The frozen part's last layer: the pooled features, or the output before the last k blocks."""
    k = int(fine_tune_blocks or 0)
    if not 0 <= k <= BLOCKS:
        raise InvalidValue(f"fine-tune blocks must be between 0 and {BLOCKS}")
    return enet.FEATURES if k == 0 else enet.block_output(BLOCKS - 1 - k)


def efficientnet_lite0(input_shape, num_classes, side: int = 224, fine_tune_blocks: int = 0,
                       dropout: float = 0.2, **_):
    """Pixels (grayscale or RGB, any size) → RGB at side×side → ImageNet EfficientNet-Lite0 → dropout → logits."""
    import keras
    from keras import layers

    shape = tuple(input_shape)
    inputs = keras.Input(shape=shape, name="pixels")
    x = inputs
    if len(shape) == 2:
        x = layers.Reshape((*shape, 1), name="add_channel")(x)
    if x.shape[-1] == 1:  # grayscale: the same picture in all three channels
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    if tuple(x.shape[1:3]) != (side, side):
        x = layers.Resizing(side, side, antialias=max(shape[:2]) > side, name="resize")(x)
    x = layers.Dropout(dropout, name="head_dropout")(enet.trunk(x))
    model = keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="efficientnet_lite0")
    enet.load_pretrained(model)
    tail = {layer.name for layer in _tail(model, cut_layer(fine_tune_blocks)).layers}
    for layer in model.layers:  # BatchNorm stays frozen even in fine-tuned blocks: too few images to re-estimate
        layer.trainable = layer.name in tail and not isinstance(layer, layers.BatchNormalization)
    return model


def _tail(model, cut: str):
    """The sub-model from the cut layer's output to the logits (its layers are the full model's)."""
    import keras

    return keras.Model(model.get_layer(cut).output, model.outputs[0], name="tail")


def plan(x_train, y_train, cfg) -> dict:
    """The backbone's input side for this training set (and so the feature cache it uses); at least
    recipes.MIN_STEPS batches an epoch, which cost milliseconds on cached features."""
    from core.model.recipes import MIN_STEPS, pretrained_side

    steps = max(math.ceil(len(y_train) / cfg.batch_size), MIN_STEPS)
    return {"kind": "pretrained", "steps_per_epoch": steps, "model": {"side": pretrained_side(len(y_train))}}


@dataclass
class FeatureHead:
    """A pretrained model split at its cut: the frozen part's outputs come from the cache, the tail trains."""
    model: object   # the full model: what is saved
    frozen: object  # pixels -> cut output
    tail: object    # cut output -> logits; fitting it updates the full model's layers
    folder: Path    # the feature cache for this backbone, side and cut
    cut: str

    def features(self, images) -> np.ndarray:
        """The frozen part's outputs for the images, computed only for images the cache has not seen."""
        shape = tuple(self.frozen.output_shape[1:])
        return features.cached(lambda x, bs: self.frozen.predict(x, batch_size=bs, verbose=0), images,
                               self.folder, shape)

    def fit_inputs(self, x_train, x_val) -> tuple:
        """The frozen outputs the tail trains and validates on, and what run.json says about them."""
        t0, before = time.perf_counter(), dict(features.COUNTS)
        f_train, f_val = self.features(x_train), self.features(x_val)
        info = {"cache": self.folder.name, "layer": self.cut, "seconds": round(time.perf_counter() - t0, 2),
                **{k: features.COUNTS[k] - before.get(k, 0) for k in ("computed", "reused")}}
        return f_train, f_val, info

    def logits(self, images) -> np.ndarray:
        """The full model's logits for the images, from their cached features."""
        f = self.features(images)
        return np.asarray(self.tail.predict(f, batch_size=256, verbose=0), np.float32) if len(f) else \
            np.zeros((0, int(self.model.output_shape[-1])), np.float32)

    def embeddings(self, images) -> np.ndarray:
        """The pooled features the embedding map shows (the full model's last hidden layer)."""
        import keras

        f = self.features(images)
        if self.cut == enet.FEATURES or not len(f):
            return f
        pooled = keras.Model(self.model.get_layer(self.cut).output, self.model.get_layer(enet.FEATURES).output)
        return np.asarray(pooled.predict(f, batch_size=256, verbose=0), np.float32)


def feature_head(model, fine_tune_blocks: int = 0) -> FeatureHead | None:
    """The model's FeatureHead when it is a pretrained EfficientNet-Lite0; None for any other model."""
    import keras

    names = {layer.name for layer in model.layers}
    if enet.FEATURES not in names or "stem_conv" not in names:
        return None
    cut = cut_layer(fine_tune_blocks)
    frozen = keras.Model(model.inputs, model.get_layer(cut).output, name="frozen")
    side = int(model.get_layer("stem_conv").input.shape[1])
    return FeatureHead(model, frozen, _tail(model, cut), feature_folder(side, cut), cut)


def feature_folder(side: int, cut: str = enet.FEATURES) -> Path:
    """The feature cache of the backbone at this input side, cut at this layer (shared by every model built so)."""
    return enet.cache_dir().parent / "features" / f"{enet.NAME}-{side}-{cut}"
