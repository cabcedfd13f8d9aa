"""docs/benchmarks.md is one run's: every figure bench/analysis.md cites is a row of the saved run, and the page is
what `python bench/run_all.py --render` makes of them."""
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import run_all  # noqa: E402


def test_every_citation_in_the_analysis_is_a_row_of_the_saved_run():
    missing = run_all.cite(run_all.ANALYSIS.read_text(), run_all.saved_run()[1])[1]
    assert not missing, f"bench/analysis.md cites figures the run does not have: {missing}"


def test_the_page_is_rendered_from_the_saved_run_of_one_commit():
    saved, _, page = run_all.saved_run()
    assert not saved["quick"] and "note" not in saved["info"], "a quick run, or figures mixed from several runs"
    assert saved["info"].get("commit") and "uncommitted" not in saved["info"]["commit"]
    assert set(saved["results"]) == set(run_all.BENCHES), "a benchmark is missing from the run"
    assert (ROOT / "docs" / "benchmarks.md").read_text() == page, \
        "docs/benchmarks.md is out of date: python bench/run_all.py --render"


def test_a_citation_takes_the_rows_value_unit_format_and_fields():
    rows = [{"bench": "b", "metric": "m: x / y", "value": 0.98765, "unit": "ratio", "spread": "0.9–1.1",
             "target": "≥ 0.95", "status": "PASS", "notes": ""},
            {"bench": "b", "metric": "t", "value": 1.5, "unit": "s", "spread": "", "target": "", "status": "",
             "notes": ""}]
    text, missing = run_all.cite("{{b | m: x / y | .2f}} ({{b|m: x / y|spread}}, {{ b | m: x / y | status }}); "
                                 "{{b | t}}; {{b | nope}}", rows)
    assert text == "0.99 (0.9–1.1, PASS); 1.500 s; **(not in this run: b | nope)**"
    assert missing == ["b | nope"]
