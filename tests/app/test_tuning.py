"""ui/tuning.py through AppTest: a finished range test on the Train page, and its rate put in the form in one click."""
from __future__ import annotations

from pathlib import Path

import pytest
from app_helpers import assert_clean, open_page
from streamlit.testing.v1 import AppTest

from core.train import lr_find
from core.train.trainer import TrainConfig, train
from ui import settings, tuning

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


@pytest.mark.quick
def test_a_range_test_result_sets_the_forms_learning_rate(runs_dir, mnist_small):
    # a real range test, in this process: 1,000 MNIST digits, batch 16 → 63 batches an epoch over 4 epochs
    run = train(TrainConfig(dataset="mnist", arch="dense", mode="lr_find", batch_size=16, max_train_samples=1000,
                            runs_dir=str(runs_dir)), dataset=mnist_small)
    assert run.kind == "lr_find" and not run.usable and run.meta["lr_find_batches"] > 100
    suggested = lr_find.load(run.path)["suggested_lr"]
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[tuning.LR_RUN_KEY] = run.id
    at = open_page(at, "app_pages/train.py")
    assert_clean(at, "train page with a range test")
    assert any(f"{suggested:.2g}" in m.value for m in at.markdown), "the suggestion is not shown"
    assert at.select_slider(key="train_lr").value == 1e-3  # dense's preset
    use = next(b for b in at.button if b.key == "lr_find_use")
    assert use.label == f"Use {settings.nearest_rate(suggested):g}"
    at = use.click().run()
    assert_clean(at, "after Use")
    assert at.select_slider(key="train_lr").value == settings.nearest_rate(suggested)
    # never offered as a model
    assert run.id not in str(at.sidebar.selectbox(key="active_model").proto.options)
