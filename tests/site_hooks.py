"""A sitecustomize hook for the processes a test starts (servers, and the workers they spawn): TensorFlow's import
made slower, and trainings a test stops paced, each when asked for."""
from __future__ import annotations

import os
from pathlib import Path

HEAD = """\
# Written by tests/site_hooks.py for the processes that get its PYTHONPATH.
import importlib.machinery
import os
import sys
import time


def _after_exec(name, wrap):
    \"\"\"Run `wrap(module, execute)` in place of executing module `name` when it is first imported.\"\"\"
    class Finder:
        def find_spec(self, fullname, path=None, target=None):
            if fullname != name:
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            if spec is not None and spec.loader is not None:
                execute = spec.loader.exec_module
                spec.loader.exec_module = lambda module: wrap(module, execute)
            return spec

    sys.meta_path.insert(0, Finder())
"""

SLOW_TF = """
# Executing the `tensorflow` package takes {delay} s longer, or until the file GATE exists (when one is named). (The
# wait is in the loader, which holds only tensorflow's own import lock: other imports go on meanwhile.)
GATE = {until!r}


def _slow_tensorflow(module, execute):
    end = time.monotonic() + {delay}
    while time.monotonic() < end and not (GATE and os.path.exists(GATE)):
        time.sleep(0.05)
    execute(module)


_after_exec("tensorflow", _slow_tensorflow)
"""

PACED = """
# A training planned for more than {batches} batches (one the test ends itself) sleeps {pause} s after each batch:
# it waits for the test at a few percent of a core instead of taking a whole one from the suite.
def _paced_callbacks(module, execute):
    execute(module)
    batch_end = module.LiveMetrics.on_train_batch_end

    def paced(self, batch, logs=None):
        batch_end(self, batch, logs)
        if self.params["epochs"] * (self.params["steps"] or 1) > {batches}:
            time.sleep({pause})

    module.LiveMetrics.on_train_batch_end = paced


_after_exec("core.train.callbacks", _paced_callbacks)
"""

PACED_BATCHES = 10_000  # more than any training a test waits to finish: those end only when the test stops them
PACE_S = 0.05


def site_pythonpath(folder: Path, *more: str, slow_tf: float = 0, until: Path | None = None,
                    paced: bool = False) -> str:
    """A PYTHONPATH (the hook's folder, then `more`, then today's) under which TensorFlow loads `slow_tf` s later,
    or as soon as the file `until` exists (a test that opens the gate itself waits no longer than it must), and
    under which, if `paced`, trainings planned for more than PACED_BATCHES batches pause PACE_S after each."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [HEAD]
    if slow_tf:
        parts.append(SLOW_TF.format(delay=slow_tf, until=str(until or "")))
    if paced:
        parts.append(PACED.format(batches=PACED_BATCHES, pause=PACE_S))
    (folder / "sitecustomize.py").write_text("".join(parts))
    return os.pathsep.join(p for p in (str(folder), *more, os.environ.get("PYTHONPATH", "")) if p)
