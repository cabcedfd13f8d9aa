"""A sitecustomize hook that makes `import tensorflow` slower in the processes that get its PYTHONPATH."""
from __future__ import annotations

import os
from pathlib import Path

SLOW_IMPORT = """\
# Written by tests/slow_tf.py: executing the `tensorflow` package takes {delay} s longer in this process, or until
# the file GATE exists (when one is named). (The wait is in the loader, which holds only tensorflow's own import
# lock: other imports go on meanwhile.)
import importlib.machinery
import os
import sys
import time

GATE = {until!r}


class _SlowTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def slow_exec_module(module):
                end = time.monotonic() + {delay}
                while time.monotonic() < end and not (GATE and os.path.exists(GATE)):
                    time.sleep(0.05)
                execute(module)

            spec.loader.exec_module = slow_exec_module
        return spec


sys.meta_path.insert(0, _SlowTensorFlow())
"""


def slow_tf_pythonpath(folder: Path, delay: float, *more: str, until: Path | None = None) -> str:
    """A PYTHONPATH (the hook's folder, then `more`, then today's) under which TensorFlow loads `delay` s later,
    or as soon as the file `until` exists (a test that opens the gate itself waits no longer than it must)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SLOW_IMPORT.format(delay=delay, until=str(until or "")))
    return os.pathsep.join(p for p in (str(folder), *more, os.environ.get("PYTHONPATH", "")) if p)
