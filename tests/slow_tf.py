"""A sitecustomize hook that makes `import tensorflow` slower in the processes that get its PYTHONPATH."""
from __future__ import annotations

import os
from pathlib import Path

SLOW_IMPORT = """\
# Written by tests/slow_tf.py: executing the `tensorflow` package takes {delay} s longer in this process.
# (The sleep is in the loader, which holds only tensorflow's own import lock: other imports go on meanwhile.)
import importlib.machinery
import sys
import time


class _SlowTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            execute = spec.loader.exec_module

            def slow_exec_module(module):
                time.sleep({delay})
                execute(module)

            spec.loader.exec_module = slow_exec_module
        return spec


sys.meta_path.insert(0, _SlowTensorFlow())
"""


def slow_tf_pythonpath(folder: Path, delay: float, *more: str) -> str:
    """A PYTHONPATH (the hook's folder, then `more`, then today's) under which TensorFlow loads `delay` s later."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SLOW_IMPORT.format(delay=delay))
    return os.pathsep.join(p for p in (str(folder), *more, os.environ.get("PYTHONPATH", "")) if p)
