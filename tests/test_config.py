"""core.config: every CLASSIFIER_LAB_* variable is declared once, a bad value is named, the README's table is current."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import LabError, config

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.quick
def test_every_variable_the_code_reads_is_declared():
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py", "*.sh"],
                           cwd=ROOT, capture_output=True, text=True).stdout.split()
    text = "\n".join((ROOT / f).read_text() for f in files if f != "core/config.py" and (ROOT / f).is_file())
    by_attr = {attr: s for attr, s in vars(config).items() if isinstance(s, config.Setting)}
    used = set(re.findall(r"CLASSIFIER_LAB_[A-Z_]*[A-Z]", text))
    used |= {by_attr[a].name for a in re.findall(r"\bconfig\.([A-Z_]+)\b", text) if a in by_attr}
    declared = {s.name for s in config.SETTINGS}
    assert used - declared == set(), "declare these in core/config.py"
    assert declared - used == set(), "declared but never read"
    assert len(declared) == len(config.SETTINGS)


def test_the_readme_table_is_the_registry():
    readme = (ROOT / "README.md").read_text()
    assert config.readme_table() in readme, "README's settings table is stale: paste config.readme_table() there"


@pytest.mark.parametrize("setting, raw", [(config.MAX_TRAININGS, "two"), (config.MAX_TRAININGS, "0"),
                                          (config.STREAM_MB, "-1"), (config.FEATURE_CACHE_MB, "-1"),
                                          (config.ENGINE, "spark"), (config.OFFLINE, "maybe"),
                                          (config.RAY_GPUS, "lots")])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, setting, raw):
    monkeypatch.setenv(setting.name, raw)
    with pytest.raises(config.ConfigError) as e:
        setting.get()
    assert isinstance(e.value, LabError) and str(e.value).startswith(f"{setting.name}={raw!r}: ")
    assert "\n" not in str(e.value)


def test_values_parse_and_blank_means_the_default(monkeypatch):
    monkeypatch.setenv(config.MAX_TRAININGS.name, " 3 ")
    monkeypatch.setenv(config.ENGINE.name, "Ray")
    monkeypatch.setenv(config.OFFLINE.name, "yes")
    monkeypatch.setenv(config.STREAM_MB.name, "")
    assert (config.MAX_TRAININGS.get(), config.ENGINE.get(), config.OFFLINE.get()) == (3, "ray", True)
    assert config.STREAM_MB.get() == 1024.0 and not config.STREAM_MB.is_set()


def test_the_cli_prints_a_bad_setting_as_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CLASSIFIER_LAB_OFFLINE": "maybe", "CLASSIFIER_LAB_RUNS": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "core", "datasets"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == \
        ["error: CLASSIFIER_LAB_OFFLINE='maybe': expected 1/0, true/false, yes/no or on/off; fix or unset it"]
    assert "Traceback" not in out.stderr
