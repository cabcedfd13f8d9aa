"""Custom Keras layers; importing this module registers them for safe loading."""
from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="classifier_lab")
class RandomStrokeWidth(layers.Layer):
    """Randomly thickens or thins bright strokes (grey dilation/erosion) during training."""

    def __init__(self, rate: float = 0.5, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self._seed_gen = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training:
            return x
        thick = ops.max_pool(x, pool_size=2, strides=1, padding="same")
        thin = -ops.max_pool(-x, pool_size=2, strides=1, padding="same")
        u = keras.random.uniform((ops.shape(x)[0], 1, 1, 1), seed=self._seed_gen)
        half = self.rate / 2
        return ops.where(u < half, thick, ops.where(u < self.rate, thin, x))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}



@keras.saving.register_keras_serializable(package="classifier_lab")
class EdgeMagnitude(layers.Layer):
    """Sobel gradient magnitude, the strongest over the colour channels: outlines that no colour or
    brightness swap changes (what a few images of shapes in arbitrary colours can be learnt from)."""

    def call(self, x):
        channels = x.shape[-1]
        gx = ops.convert_to_tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype)
        kernel = ops.stack([gx, ops.transpose(gx)], axis=-1)[:, :, None, :]  # (3, 3, 1, 2)
        kernel = ops.tile(kernel, (1, 1, channels, 1))  # the same pair of filters on every channel
        g = ops.depthwise_conv(x, kernel, padding="same")  # (b, h, w, channels * 2): gx, gy per channel
        g = ops.reshape(g, (-1, ops.shape(x)[1], ops.shape(x)[2], channels, 2))
        return ops.max(ops.sqrt(ops.sum(g * g, axis=-1) + 1e-6), axis=-1, keepdims=True) / 4.0

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)
