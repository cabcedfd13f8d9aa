"""core.export.webpage where the machine lacks something: without npm's ONNX Runtime Web the page fails in one line
naming the fix and the other formats still export; without Chromium it exports, marked unchecked, card included.
(The page itself, checked and used in Chromium: tests/browser/test_webpage.py.)"""
import zipfile

import pytest

from core.export import exporter, webpage
from core.model import compat
from core.store import runs
from ui.model_export import check_text


@pytest.fixture(scope="module")
def bundled():
    run = runs.resolve("mnist")
    return run, compat.load_model(run.model_path)


@pytest.mark.quick
def test_without_npm_runtime_the_page_says_how_and_the_others_export(bundled, monkeypatch, tmp_path):
    monkeypatch.setattr(webpage, "ORT", tmp_path / "web" / "node_modules" / "onnxruntime-web")
    run, model = bundled
    results = {r["format"]: r for r in exporter.export(run, "onnx,webpage", tmp_path / "out", tmp_path, model)}
    page = results["webpage"]
    assert not page["ok"] and page["error"].startswith("Web page: needs ONNX Runtime Web from npm"), page
    assert "run.sh app" in page["error"]
    assert results["onnx"]["ok"] and [p.name for p in (tmp_path / "out").iterdir()] == ["mnist-onnx.zip"]


def test_without_chromium_the_page_exports_unchecked(bundled, monkeypatch, tmp_path):
    if webpage.missing():
        pytest.skip(f"web-page export {webpage.missing()}")
    monkeypatch.setenv("CLASSIFIER_LAB_CHROMIUM", str(tmp_path / "no-chromium"))
    run, model = bundled
    [page] = exporter.export(run, "webpage", tmp_path / "out", tmp_path, model)
    assert page["ok"] and page["unchecked"] == (f"not checked here: no Chromium at {tmp_path / 'no-chromium'} "
                                                "(apt-get install chromium, or set CLASSIFIER_LAB_CHROMIUM)"), page
    assert "top1_agreement" not in page and page["bytes"] > 5_000_000
    with zipfile.ZipFile(page["zip"]) as z:
        card, html = z.read("mnist-webpage/MODEL_CARD.md").decode(), z.read("mnist-webpage/index.html").decode()
    assert f"Exported but {page['unchecked']}." in card and "Exported but not checked here" in html
    assert check_text(page).startswith("✓ exported, not checked here: no Chromium")
