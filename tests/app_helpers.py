"""Helpers shared by the AppTest and fault tests (a plain module: tests/browser has its own conftest)."""
from pathlib import Path


def open_page(at, page: str):
    at.switch_page(page)
    return at.run()


def values(elements) -> list:
    return [e.value for e in elements]


def assert_clean(at, where: str = "") -> None:
    """No uncaught exception and no st.error on the page."""
    assert not at.exception, f"{where}: exception {values(at.exception)}"
    assert not at.error, f"{where}: error {values(at.error)}"


def save_model(path: Path, input_shape, n_out: int = 10, lam: bool = False) -> Path:
    """A small real Keras model file of a given input shape and output count (optionally with a Lambda)."""
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    if lam:
        x = keras.layers.Lambda(lambda t: t * 2)(x)
    keras.Model(inputs, keras.layers.Dense(n_out)(x)).save(path)
    return path


PHOTO_CLASSES = (0, 1, 7)  # Fashion-MNIST T-shirt/top, Trouser, Sneaker


def _photo(image):
    from PIL import Image

    return Image.fromarray(image).convert("RGB").resize((96, 96))


def own_photos(root, name: str = "look") -> str:
    """An own dataset of 3 Fashion-MNIST classes × 8 photos (96×96 PNG files) plus, planted: an exact copy of a
    file, a JPEG re-encode of a photo, a trouser filed under sneaker, and an astronaut filed under tshirt."""
    import shutil

    import numpy as np
    import skimage.data
    from PIL import Image

    from core.data import uploads
    from core.data.datasets import load_dataset

    fashion = load_dataset("fashion_mnist", offline=True)
    src = root / "src"
    for k in PHOTO_CLASSES:
        folder = src / fashion.class_names[k].split("/")[0].lower()
        folder.mkdir(parents=True)
        for i, j in enumerate(np.flatnonzero(fashion.y_test == k)[:8]):
            _photo(fashion.x_test[j]).save(folder / f"{i:02d}.png")
    shutil.copy(src / "trouser" / "00.png", src / "trouser" / "copy_of_00.png")
    _photo(fashion.x_test[np.flatnonzero(fashion.y_test == 7)[0]]).save(src / "sneaker" / "reencoded.jpg", quality=80)
    _photo(fashion.x_test[np.flatnonzero(fashion.y_test == 1)[20]]).save(src / "sneaker" / "wrong.png")
    Image.fromarray(skimage.data.astronaut()).resize((96, 96)).save(src / "t-shirt" / "astronaut.png")
    uploads.import_source(src, name)
    return name
