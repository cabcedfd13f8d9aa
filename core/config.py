"""Every setting of Classifier Lab, declared once: each CLASSIFIER_LAB_* variable with its type, default and meaning.

Read a setting with `config.RUNS.get()`; a value that does not parse raises `ConfigError` naming the variable.
The README's settings table is checked against `SETTINGS` by tests/test_config.py.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core import InvalidValue

TRUE, FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


class ConfigError(InvalidValue):
    """A CLASSIFIER_LAB_* variable whose value cannot be used."""


@dataclass(frozen=True)
class Setting:
    """One environment variable: how its text becomes a value, and what an unset variable means."""
    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str            # one line for the README's table
    default_doc: str = ""  # the default in words, where it is computed rather than a constant
    group: str = "app"  # "app", or "tests" for variables only the test suite reads

    def get(self):
        """The value of the variable, or the default when it is unset or blank; ConfigError when it can't be parsed."""
        raw = os.environ.get(self.name, "").strip()
        if not raw:
            return self.default
        try:
            return self.parse(raw)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{self.name}={raw!r}: {e}; fix or unset it") from None

    def is_set(self) -> bool:
        return bool(os.environ.get(self.name, "").strip())


def _flag(text: str) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _number(minimum: float, kind=float):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise ValueError(f"expected a number ≥ {minimum:g}")
        return value
    return parse


def _choice(*options: str):
    def parse(text: str) -> str:
        if text.lower() not in options:
            raise ValueError(f"expected one of {', '.join(options)}")
        return text.lower()
    return parse


def _path(text: str) -> Path:
    return Path(text).expanduser()


RUNS = Setting("CLASSIFIER_LAB_RUNS", _path, Path("runs"), "Where runs live, one folder each", "`runs/`")
DATA = Setting("CLASSIFIER_LAB_DATA", _path, None, "Where own datasets live (`<name>/<class>/<images>`)",
               "`data/` next to the runs folder")
FIXES = Setting("CLASSIFIER_LAB_FIXES", _path, None, "Where the fix overlays live (`<dataset>.jsonl`)",
                "`.fixes/` in the runs folder")
CACHE = Setting("CLASSIFIER_LAB_CACHE", _path, None, "Where decoded caches of big folder datasets live; the "
                "pretrained backbone's converted weights and cached features go in its `backbones/` and `features/`",
                "`.cache/decoded/` in the data folder (`~/.cache/classifier-lab/decoded/` if that is read-only); "
                "the backbone's in `~/.cache/classifier-lab/`")
# 1 GB: the pooled features of ~400,000 images (2.5 KB each), or the inputs of ~50,000 images to the last
# fine-tuned blocks (7×7×192 at 224): many datasets' worth, yet small beside the decoded images themselves
FEATURE_CACHE_MB = Setting("CLASSIFIER_LAB_FEATURE_CACHE_MB", _number(0), 1024.0,
                           "Size (MB) the pretrained backbone's cached features are kept under, the least "
                           "recently used removed first; 0 keeps only the images looked up last", "1024")
OFFLINE = Setting("CLASSIFIER_LAB_OFFLINE", _flag, False, "Never touch the network: offline dataset sources only", "off")
STREAM_MB = Setting("CLASSIFIER_LAB_STREAM_MB", _number(0), 1024.0,
                    "Decoded size (MB) above which a folder dataset streams from disk; 0 streams every one", "1024")
MAX_TRAININGS = Setting("CLASSIFIER_LAB_MAX_TRAININGS", _number(1, int), None,
                        "Trainings that run at once on this server", "one per two cores")
# fewer than the default leaves cores to the browser and other work on the machine (the test suite runs with 1)
TRAINING_THREADS = Setting("CLASSIFIER_LAB_TRAINING_THREADS", _number(1, int), None,
                           "Threads a local training's TensorFlow computes with", "the cores shared among the "
                           "trainings that run at once")
ENGINE = Setting("CLASSIFIER_LAB_ENGINE", _choice("local", "ray"), "local",
                 "Where trainings run: `local` worker processes or `ray` tasks")
RAY_CPUS = Setting("CLASSIFIER_LAB_RAY_CPUS", _number(0.01), None, "CPUs a Ray training task asks for",
                   "2 (or fewer, on a smaller cluster)")
RAY_GPUS = Setting("CLASSIFIER_LAB_RAY_GPUS", _number(0), 0.0, "GPUs a Ray training task asks for", "0")
CHROMIUM = Setting("CLASSIFIER_LAB_CHROMIUM", _path, Path("/usr/bin/chromium"),
                   "The Chromium the web-page export is checked in; the browser tests drive it when this is set, "
                   "else the lighter `/usr/bin/chromium-headless-shell` where it is installed")
SCREENSHOTS = Setting("CLASSIFIER_LAB_SCREENSHOTS", _path, None,
                      "Folder where the browser tests save the README's screenshots", "none saved", group="tests")

SETTINGS: tuple[Setting, ...] = tuple(v for v in list(globals().values()) if isinstance(v, Setting))


def user_cache_dir() -> Path:
    """The user's cache folder for this app, outside any repository: $XDG_CACHE_HOME or ~/.cache, /classifier-lab."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "classifier-lab"


def readme_table() -> str:
    """The README's settings table, made from SETTINGS."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = s.default_doc or (f"`{s.default}`" if s.default not in (None, "") else "unset")
        rows.append(f"| `{s.name}` | {default} | {s.doc}{' (tests only)' if s.group == 'tests' else ''} |")
    return "\n".join(rows)
