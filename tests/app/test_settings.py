"""Shareable settings: the Train page's configuration round-trips through the URL."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.train.trainer import TrainConfig
from ui import settings

APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


def test_query_round_trip():
    cfg = TrainConfig(dataset="fashion_mnist", arch="cnn", epochs=3, batch_size=128, learning_rate=3e-3,
                      optimizer="sgd", validation_split=0.2, seed=7, max_train_samples=5000,
                      early_stopping_patience=3)
    values, ignored = settings.from_query(settings.to_query(cfg))
    assert ignored == []
    assert values == {"train_dataset": "fashion_mnist", "train_arch": "cnn", "train_epochs": 3, "train_batch": 128,
                      "train_lr": 3e-3, "train_opt": "sgd", "train_val": 0.2, "train_seed": 7, "train_subset": 5000,
                      "train_patience": 3}


def test_a_suggested_rate_snaps_to_the_nearest_option_on_a_log_scale():
    assert settings.nearest_rate(6.8e-4) == 5e-4 and settings.nearest_rate(8e-4) == 1e-3
    assert settings.nearest_rate(1e-9) == settings.LEARNING_RATES[0] and settings.nearest_rate(5.0) == 1e-1
    assert all(settings.nearest_rate(r) == r for r in settings.LEARNING_RATES)


def test_bad_values_are_ignored_with_a_reason():
    values, ignored = settings.from_query({"arch": "resnet", "epochs": "-3", "lr": "abc", "batch": "64", "x": "1"})
    assert values == {"train_batch": 64}
    assert len(ignored) == 3 and any("resnet" in note for note in ignored)


def test_train_page_reads_and_writes_the_url(monkeypatch, tmp_path):
    monkeypatch.setenv("CLASSIFIER_LAB_RUNS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/train.py")
    at.query_params.update({"dataset": "fashion_mnist", "arch": "cnn_strong", "epochs": "3", "lr": "0.01"})
    at.run()
    assert not at.exception
    assert at.selectbox(key="train_dataset").value == "fashion_mnist"
    assert at.selectbox(key="train_arch").value == "cnn_strong"
    assert at.number_input(key="train_epochs").value == 3
    assert at.select_slider(key="train_lr").value == 0.01
    assert at.select_slider(key="train_batch").value == 128  # cnn_strong's preset where the link is silent
    at.number_input(key="train_seed").set_value(42).run()
    assert at.query_params["seed"] == "42"
    assert at.query_params["arch"] == "cnn_strong" and at.query_params["epochs"] == "3"


@pytest.mark.quick
def test_a_typed_number_wins_over_a_late_rerun_from_the_dataset_choice(monkeypatch, tmp_path):
    """The form race (issue 24): the dataset choice's rerun reaches the server with a number typed meanwhile, in one
    rerun, as a browser sends them when the person types before that rerun ran. The dataset's presets must not
    overwrite what was typed; a setting nobody typed still follows them."""
    monkeypatch.setenv("CLASSIFIER_LAB_RUNS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("app_pages/train.py")
    at.run()
    assert at.number_input(key="train_epochs").value == 5  # dense's preset
    at.selectbox(key="train_dataset").set_value("fashion_mnist")
    at.number_input(key="train_epochs").set_value(200)  # typed before the choice's rerun ran
    at.run()
    assert not at.exception
    assert at.selectbox(key="train_dataset").value == "fashion_mnist"
    assert at.number_input(key="train_epochs").value == 200 and at.query_params["epochs"] == "200"
    at.selectbox(key="train_arch").set_value("cnn_strong").run()  # a later choice: presets for what nobody typed
    assert at.number_input(key="train_epochs").value == 200
    assert at.select_slider(key="train_batch").value == 128 and at.query_params["arch"] == "cnn_strong"
