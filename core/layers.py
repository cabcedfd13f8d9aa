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
