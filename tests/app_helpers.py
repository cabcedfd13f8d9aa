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
