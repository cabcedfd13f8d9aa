"""A plain-numpy EfficientNet-Lite0 forward pass straight from the torch state dict (torch layouts, float64):
the reference the Keras network is checked against. TF "same" padding is written out here, not borrowed."""
import numpy as np

from core.model.efficientnet_lite import BN_EPS, block_specs


def same_pad(x, k, s):
    """Pad H and W so the output is ceil(size / s); the odd pixel goes bottom/right (TF and the source's
    Conv2dStaticSamePadding)."""
    pads = []
    for size in x.shape[1:3]:
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])


def windows(x, k, s):
    """(N, H', W', C, k, k) patches of the padded input at stride s."""
    return np.lib.stride_tricks.sliding_window_view(same_pad(x, k, s), (k, k), axis=(1, 2))[:, ::s, ::s]


def conv(x, w, s=1):
    """Convolution by im2col: x (N, H, W, C), w (out, in, kh, kw)."""
    win = windows(x, w.shape[2], s)
    n, h, wd = win.shape[:3]
    return (win.reshape(n * h * wd, -1) @ w.reshape(w.shape[0], -1).T).reshape(n, h, wd, -1)


def depthwise(x, w, s):
    """Depthwise convolution: w (C, 1, kh, kw)."""
    return np.einsum("nhwcij,cij->nhwc", windows(x, w.shape[2], s), w[:, 0])


def bn(x, state, name):
    scale = state[f"{name}.weight"] / np.sqrt(state[f"{name}.running_var"] + BN_EPS)
    return (x - state[f"{name}.running_mean"]) * scale + state[f"{name}.bias"]


def relu6(x):
    return np.clip(x, 0, 6)


def forward(images, state):
    """(pooled 1,280 features, ImageNet probabilities) for 0–255 RGB images (N, H, W, 3)."""
    state = {k: np.asarray(v, np.float64) for k, v in state.items()}
    x = (np.asarray(images, np.float64) - 127) / 128
    x = relu6(bn(conv(x, state["_conv_stem.weight"], 2), state, "_bn0"))
    for i, (k, s, e, cin, cout) in enumerate(block_specs()):
        t, y = f"_blocks.{i}", x
        if e != 1:
            y = relu6(bn(conv(y, state[f"{t}._expand_conv.weight"]), state, f"{t}._bn0"))
        y = relu6(bn(depthwise(y, state[f"{t}._depthwise_conv.weight"], s), state, f"{t}._bn1"))
        y = bn(conv(y, state[f"{t}._project_conv.weight"]), state, f"{t}._bn2")
        x = x + y if s == 1 and cin == cout else y
    pooled = relu6(bn(conv(x, state["_conv_head.weight"]), state, "_bn1")).mean(axis=(1, 2))
    logits = pooled @ state["_fc.weight"].T + state["_fc.bias"]
    e = np.exp(logits - logits.max(1, keepdims=True))
    return pooled, e / e.sum(1, keepdims=True)
