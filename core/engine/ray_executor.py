"""The Ray executor: each run is a plain Ray task in a fresh worker process; live lines come back through an
actor and the run's files come back with the task's result, so a cluster needs no shared filesystem."""
from __future__ import annotations

import json
import os

from core import config
from core.store import runs
from core.engine.executors import Executor
from core.engine.feed import FEED_FILE, append_lines
from core.engine.worker import run_remote

# what the workers need of the repository is core/ and assets/data/; the rest stays on the server
EXCLUDES = ["/.git/", "/.venv/", "/runs/", "/data/", "/docs/", "/tests/", "/bench/", "/assets/models/",
            "__pycache__/", "*.pyc"]
PASSED_ENV = ("CLASSIFIER_LAB_OFFLINE", "TF_CPP_MIN_LOG_LEVEL", "KERAS_HOME")


class FeedHub:
    """A Ray actor: each run's feed lines until the server collects them, and which runs were asked to stop."""

    def __init__(self):
        self.lines: dict[str, list[str]] = {}
        self.stops: set[str] = set()

    def push(self, run_id: str, line: str) -> bool:
        self.lines.setdefault(run_id, []).append(line)
        return run_id in self.stops

    def drain(self, run_id: str) -> list[str]:
        return self.lines.pop(run_id, [])

    def request_stop(self, run_id: str) -> None:
        self.stops.add(run_id)

    def forget(self, run_id: str) -> None:
        self.lines.pop(run_id, None)
        self.stops.discard(run_id)


def connect() -> None:
    """Join the cluster at $RAY_ADDRESS, else start a local Ray (once per process)."""
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or "local"  # never attach by chance to a cluster found running
    env = {k: os.environ[k] for k in os.environ if k.startswith("CLASSIFIER_LAB_") or k in PASSED_ENV}
    kwargs = {"num_cpus": os.cpu_count()} if address == "local" else {}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, namespace="classifier-lab",
             runtime_env={"working_dir": str(runs.ROOT), "excludes": EXCLUDES, "env_vars": env}, **kwargs)


class RayExecutor(Executor):
    """Runs engine jobs as Ray tasks: num_cpus/num_gpus per run from the environment."""
    name = "ray"

    def __init__(self):
        import ray

        connect()
        total = ray.cluster_resources().get("CPU", 1)
        self.cpus = config.RAY_CPUS.get() or min(2.0, total)
        self.gpus = config.RAY_GPUS.get()
        self.hub = ray.remote(num_cpus=0)(FeedHub).remote()
        # max_calls=1: a fresh worker process per run (Keras names and seeds are per process)
        self.task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0, max_calls=1)(run_remote)

    def slots(self) -> int:
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus))

    def start(self, job) -> None:
        runs.write_status(job.run_dir, runs.RunStatus.RUNNING)
        job.handle = self.task.remote(job.config.to_dict(), job.run_id, self.hub, max(1, int(self.cpus)))

    def _pump(self, job) -> None:
        import ray

        append_lines(job.run_dir / FEED_FILE, ray.get(self.hub.drain.remote(job.run_id)))

    def poll(self, job) -> str | None:
        import ray

        self._pump(job)
        ready, _ = ray.wait([job.handle], timeout=0)
        if not ready:
            return None
        try:
            files = ray.get(job.handle)
        except ray.exceptions.TaskCancelledError:
            return "the Ray task was cancelled"
        except ray.exceptions.RayError as e:
            return f"Ray worker failed: {' '.join(str(e).split())[:300]}"
        finally:
            self._pump(job)
            self.hub.forget.remote(job.run_id)
        self._save(job, files)
        return ""

    def _save(self, job, files: dict[str, bytes]) -> None:
        """The task's files into the server's run folder; run.json last, so the run reads finished only then."""
        for name, data in files.items():
            if name != "run.json":
                tmp = job.run_dir / f".{name}.tmp"
                tmp.write_bytes(data)
                os.replace(tmp, job.run_dir / name)
        here = runs.read_json(job.run_dir / "run.json", {}) or {}
        meta = {**here, **(json.loads(files["run.json"]) if "run.json" in files else {}), "engine": "ray"}
        for key in ("created", "config"):  # the worker's config names its scratch folder as runs_dir
            if key in here:
                meta[key] = here[key]
        runs.write_json_atomic(job.run_dir / "run.json", meta)

    def stop(self, job) -> None:
        self.hub.request_stop.remote(job.run_id)

    def kill(self, job) -> None:
        import ray

        ray.cancel(job.handle, force=True)

    def close(self) -> None:
        pass  # ray.init is once per process; the cluster outlives one engine
