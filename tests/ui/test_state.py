"""ui.state: what the server does once, outside any page."""
import gc

import pytest

from ui import state


@pytest.mark.quick
def test_warm_tensorflow_takes_its_heap_out_of_the_collectors_sight():
    """Streamlit runs gc.collect(2) after every rerun (the Train page's each second): after the warm-up
    TensorFlow's objects are frozen, so that collection no longer walks them (issue #12)."""
    try:
        state.warm_tensorflow().join(300)
        import tensorflow  # noqa: F401

        assert gc.get_freeze_count() > 100_000  # TensorFlow's (and whatever else lived then) are frozen
    finally:
        gc.unfreeze()
