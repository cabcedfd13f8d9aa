"""Architecture registry: one builder per model, raw 0-255 pixels in, logits out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from core import InvalidValue
from core.model import pretrained, recipes

# Keras's 0.99 lags behind the weights for hundreds of steps: with 57 steps an epoch (the offline MNIST
# subset) validation accuracy sat near 10 % for seven epochs. 0.9 tracks within an epoch.
BN_MOMENTUM = 0.9


def _seed(seed: int | None, i: int) -> int | None:
    """A distinct seed per augmentation layer: layers sharing one seed draw identical random numbers,
    so every rotation would come with the matching zoom, shift and stroke change."""
    return None if seed is None else int(seed) * 101 + i


def augmentation(profile: str, seed: int | None = None):
    """Data augmentation for a dataset's profile: digits never flip, clothing and photos may."""
    import keras
    from keras import layers

    from core.model.layers import RandomStrokeWidth
    if profile == "digits":
        # Drawn digits come rotated, shifted, sized and stroked differently from MNIST's.
        aug = [
            layers.RandomRotation(0.04, fill_mode="constant", seed=_seed(seed, 0)),
            layers.RandomZoom((-0.15, 0.15), fill_mode="constant", seed=_seed(seed, 1)),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=_seed(seed, 2)),
            RandomStrokeWidth(0.5, seed=_seed(seed, 3)),
        ]
    elif profile == "clothing":
        aug = [
            layers.RandomFlip("horizontal", seed=_seed(seed, 0)),
            layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=_seed(seed, 1)),
            layers.RandomZoom(0.06, fill_mode="constant", seed=_seed(seed, 2)),
        ]
    else:  # photos, as in the TensorFlow flowers tutorial
        aug = [
            layers.RandomFlip("horizontal", seed=_seed(seed, 0)),
            layers.RandomRotation(0.1, seed=_seed(seed, 1)),
            layers.RandomZoom(0.1, seed=_seed(seed, 2)),
        ]
    return keras.Sequential(aug, name="augmentation")


def _inputs(input_shape: tuple) -> tuple:
    """Model input plus the 0-1 image tensor with a channel axis (grayscale gets one)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if len(input_shape) == 2:
        x = layers.Reshape((*input_shape, 1), name="add_channel")(x)
    return inputs, x


def dense(input_shape, num_classes, units: int = 128, **_):
    """Flatten, Dense 128 relu, Dense n: the TensorFlow basic-classification tutorial."""
    import keras
    from keras import layers

    inputs, x = _inputs(input_shape)
    # named as Keras names them in a fresh process: its automatic names count every layer built before in
    # this process, so a server or test that built other models would show "dense_4" on the inside views
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(units, activation="relu", name="dense")(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="dense")


def dense_wide(input_shape, num_classes, **hp):
    """Flatten, Dense 1000 relu, Dense n."""
    model = dense(input_shape, num_classes, units=1000)
    model.name = "dense_wide"
    return model


def cnn(input_shape, num_classes, augment: bool = False, dropout: float = 0.0,
        augment_profile: str = "photos", seed: int | None = None, **_):
    """Three Conv2D(16/32/64)+MaxPool blocks, Dense 128, Dense n: the flowers tutorial."""
    import keras
    from keras import layers

    inputs, x = _inputs(input_shape)
    if augment:
        x = augmentation(augment_profile, seed)(x)
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(128, activation="relu")(x)
    name = "cnn_augmented" if augment else "cnn"
    return keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name=name)


def cnn_augmented(input_shape, num_classes, **hp):
    """The tutorial CNN with per-dataset augmentation and Dropout 0.2."""
    return cnn(input_shape, num_classes, **{**hp, "augment": True, "dropout": 0.2})


def cnn_strong(input_shape, num_classes, augment: bool = False, augment_profile: str = "photos",
               seed: int | None = None, width: int = 32, **_):
    """Two BatchNorm double-conv blocks (32-32-64-64), Dense 256, dropout: ~99.3 % MNIST."""
    import keras
    from keras import layers

    inputs, x = _inputs(input_shape)
    if augment:
        x = augmentation(augment_profile, seed)(x)
    # Big photos are pooled down first so the BN blocks cost the same as on 28x28.
    while x.shape[1] > 64:
        x = layers.MaxPooling2D()(x)
    for filters in (width, width * 2):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
            x = layers.Activation("relu")(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(0.25)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(0.4)(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="cnn_strong")


def auto(input_shape, num_classes, side: int = 48, augment: bool = True, augment_profile: str = "photos",
         seed: int | None = None, width: int = 24, edges: bool = False, pretrained: bool = False, **_):
    """Resize to `side`, augment, three BatchNorm conv blocks, global average pooling: small data (`auto`);
    or, when the recipe chose it (core.model.recipes.plan_auto), the pretrained EfficientNet-Lite0 at `side`."""
    import keras
    from keras import layers

    if pretrained:
        from core.model.pretrained import efficientnet_lite0
        return efficientnet_lite0(input_shape, num_classes, side=side)

    inputs, x = _inputs(input_shape)
    if x.shape[1] > side or x.shape[2] > side:  # inside the model: every page feeds it the dataset's own size
        x = layers.Resizing(side, side, antialias=True, name="resize")(x)
    if augment:
        x = augmentation(augment_profile, seed)(x)
    if edges:  # colour carries no class (the recipe's colour probe): outlines only, at training and after
        from core.model.layers import EdgeMagnitude
        x = EdgeMagnitude(name="edges")(x)
    # explicit names: Keras's automatic ones collided ("conv2d" six times) when built in the app's training thread
    for i, filters in enumerate((width, width * 2, width * 4), 1):
        for j in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv{j}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{i}_bn{j}")(x)
            x = layers.Activation("relu", name=f"block{i}_relu{j}")(x)
        x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    # average pooling: few weights to fit and no dependence on where the object sits, which few images can't teach
    x = layers.GlobalAveragePooling2D(name="average")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return keras.Model(inputs, layers.Dense(num_classes, name="logits")(x), name="auto")


@dataclass(frozen=True)
class Architecture:
    """A registry entry: the builder and the training defaults that suit it."""
    name: str
    title: str
    description: str
    builder: Callable
    defaults: dict = field(default_factory=dict)  # epochs, batch_size, learning_rate, optimizer
    plan: Callable | None = None  # (x_train, y_train, config) -> data-dependent recipe (see core.model.recipes)


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture("dense", "Dense 128", "Flatten → Dense 128 relu → Dense n (basic-classification tutorial).",
                 dense, {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3}),
    Architecture("dense_wide", "Dense 1000", "Flatten → Dense 1000 relu → Dense n.",
                 dense_wide, {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3}),
    Architecture("cnn", "Small CNN", "Conv 16/32/64 + max-pool blocks → Dense 128 (flowers tutorial).",
                 cnn, {"epochs": 5, "batch_size": 64, "learning_rate": 1e-3}),
    Architecture("cnn_augmented", "CNN + augmentation", "The small CNN with data augmentation chosen per "
                 "dataset and Dropout 0.2.", cnn_augmented, {"epochs": 10, "batch_size": 64, "learning_rate": 1e-3}),
    Architecture("cnn_strong", "Strong CNN", "32-32-64-64 BatchNorm CNN with dropout; best accuracy, slowest.",
                 cnn_strong, {"epochs": 5, "batch_size": 128, "learning_rate": 2e-3, "optimizer": "adamw",
                              "schedule": "cosine"}),
    Architecture("auto", "Auto (small data)", "Picks input size, augmentation and training length from your "
                 "data: a small BatchNorm CNN with global average pooling; an epoch is at least "
                 f"{recipes.MIN_STEPS} steps.", auto, {"epochs": 8, "batch_size": 32, "learning_rate": 3e-3,
                                                "optimizer": "adamw", "schedule": "cosine"},
                 plan=recipes.plan_auto),
    Architecture("efficientnet_lite0", "EfficientNet-Lite0 (pretrained)", "Google's ImageNet EfficientNet-Lite0, "
                 "frozen, with a dropout + dense head: strong on few photos. Its features are computed once per "
                 "image and cached, so retraining is quick; optionally fine-tune its last blocks at a low learning "
                 "rate.", pretrained.efficientnet_lite0, {"epochs": 30, "batch_size": 32, "learning_rate": 1e-3,
                                                          "optimizer": "adam", "schedule": "cosine"},
                 plan=pretrained.plan),
]}


def build_model(arch: str, input_shape: tuple, num_classes: int, **hp):
    """Build a registered architecture; unknown names get a clear error."""
    if arch not in ARCHITECTURES:
        raise InvalidValue(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch].builder(tuple(input_shape), int(num_classes), **hp)


def summary_rows(model) -> list[dict]:
    """Layer name, type, output shape and parameter count, for tables."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        rows.append({"layer": layer.name, "type": layer.__class__.__name__,
                     "output shape": str(tuple(shape.shape)) if shape is not None else "",
                     "params": int(layer.count_params())})
    return rows


def layer_graph(model) -> str:
    """Graphviz DOT source of the layer graph: a box per layer (type, output shape, parameters), an edge
    per input it takes (read from each layer's inbound nodes, so branches and merges show as they are)."""
    def quote(*parts: str) -> str:  # a DOT string, one line per part
        return '"' + "\\n".join(str(p).replace("\\", "/").replace('"', "'") for p in parts) + '"'

    lines = ["digraph model {", '  rankdir=TB; node [shape=box, style="rounded,filled", fillcolor="#eef3fb", '
             'fontname="Helvetica", fontsize=10]; edge [color="#777777"];']
    ids = {id(layer): f"n{k}" for k, layer in enumerate(model.layers)}
    for layer, row in zip(model.layers, summary_rows(model)):
        params = f"{row['params']:,} params" if row["params"] else "no params"
        label = quote(row["layer"], f"{row['type']}  {row['output shape'].replace('None', '?')}", params)
        lines.append(f"  {ids[id(layer)]} [label={label}];")
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                source = id(tensor._keras_history.operation)
                if source in ids:
                    lines.append(f"  {ids[source]} -> {ids[id(layer)]};")
    lines.append("}")
    return "\n".join(lines)
