"""Shared fixtures: an offline world, throwaway runs folders, small real MNIST slices, one shared trained run.

Everything here is generic so every test module can use it; nothing mocks TensorFlow.

A fixture that costs seconds (a training, an export, a killed process) is session-scoped even when one module uses
it: the suite's scheduler (pytest.ini: --dist worksteal) can hand a module's tests to a test process in several
turns, and a module-scoped fixture is built again at each turn (the CLI's trained run was built 4 times a run).
Fixtures that set environment variables for their module's lifetime stay module-scoped.
"""
import os

# Before anything imports core or TensorFlow: never touch the network, keep TF's C++ logging quiet.
os.environ.setdefault("CLASSIFIER_LAB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Training workers compute on one thread: the suite already runs a test process per core, so a second thread
# would only spin against the other process (a run that trains until stopped would take both cores meanwhile).
os.environ.setdefault("CLASSIFIER_LAB_TRAINING_THREADS", "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` run from elsewhere than the repo root can still import core
    sys.path.insert(0, str(ROOT))
if str(ROOT / "tests") not in sys.path:  # tests in subfolders (mirroring core/) import the shared helpers
    sys.path.insert(0, str(ROOT / "tests"))


@pytest.fixture(scope="session", autouse=True)
def _session_runs_dir(tmp_path_factory):
    """No test may write into the repository's ./runs: default CLASSIFIER_LAB_RUNS to a session temp dir."""
    if os.environ.get("CLASSIFIER_LAB_RUNS"):
        yield Path(os.environ["CLASSIFIER_LAB_RUNS"])
        return
    path = tmp_path_factory.mktemp("session_runs")
    os.environ["CLASSIFIER_LAB_RUNS"] = str(path)
    yield path
    os.environ.pop("CLASSIFIER_LAB_RUNS", None)


@pytest.fixture(scope="session", autouse=True)
def _paced_long_trainings(tmp_path_factory):
    """Every process a test starts (servers, CLI, workers) paces trainings planned for more than
    site_hooks.PACED_BATCHES batches: those a test ends itself ("trains until stopped") then wait for it at a few
    percent of a core instead of taking a whole one from a suite that is CPU-bound."""
    from site_hooks import site_pythonpath

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", site_pythonpath(tmp_path_factory.mktemp("site_hooks"), paced=True))
        yield


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """An empty runs folder of this test's own, also set as CLASSIFIER_LAB_RUNS."""
    path = tmp_path / "runs"
    path.mkdir()
    monkeypatch.setenv("CLASSIFIER_LAB_RUNS", str(path))
    return path


def cli_env(**extra) -> dict:
    """Environment for `python -m core` subprocesses: offline, quiet, the repo importable."""
    env = {**os.environ, "CLASSIFIER_LAB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def subprocess_env():
    """cli_env as a fixture (test modules can't reliably `import conftest`: tests/browser has one too)."""
    return cli_env


def cli_main(*args) -> tuple[int, str, str]:
    """`python -m core ARGS` as the CLI's main() in this process: (exit code, stdout, stderr). For tests of what it
    prints: a subprocess would add only a TensorFlow start-up (its trainings still run in worker processes)."""
    import contextlib
    import io

    from core.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def run_cli():
    """cli_main as a fixture."""
    return cli_main


@pytest.fixture(scope="session")
def slice_dataset():
    """dataset_slice as a fixture, for the same reason."""
    return dataset_slice


@pytest.fixture(scope="session")
def mnist():
    """The full offline MNIST dataset as load_dataset returns it (8,000/2,000 here, or Keras's cache)."""
    from core.data.datasets import load_dataset

    return load_dataset("mnist", offline=True)


def dataset_slice(ds, n_train: int, n_test: int):
    """A smaller Dataset with the same classes, source marked as a slice."""
    from core.data.registry import Dataset

    return Dataset(ds.name, ds.class_names, ds.x_train[:n_train], ds.y_train[:n_train],
                   ds.x_test[:n_test], ds.y_test[:n_test], f"{ds.source} (test slice)", ds.augment)


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """1,200 training and 500 test images of real MNIST: enough for a 1-epoch dense model to reach >60 %."""
    small = dataset_slice(mnist, 1200, 500)
    assert set(np.unique(small.y_train)) == set(range(10)) and set(np.unique(small.y_test)) == set(range(10))
    return small


@pytest.fixture(scope="session")
def trained(mnist_small, tmp_path_factory):
    """One finished 1-epoch dense run on real MNIST, shared read-only by every module: (run, store, dataset)."""
    from core.train.trainer import MetricsStore, TrainConfig, train

    runs_dir = tmp_path_factory.mktemp("shared_runs")
    store = MetricsStore()
    cfg = TrainConfig(dataset="mnist", arch="dense", epochs=1, batch_size=32, max_train_samples=1000,
                      seed=0, runs_dir=str(runs_dir))
    run = train(cfg, store=store, dataset=mnist_small)
    return run, store, mnist_small
