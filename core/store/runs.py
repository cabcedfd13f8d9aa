"""Runs on disk: one folder each with run.json, history.json, model.keras and test_probs.npy (loading a model,
whether it fits a dataset, and importing a user's .keras live in core/model/compat.py)."""
from __future__ import annotations

import enum
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core import LabError, config

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_DIR = ROOT / "assets" / "models"


class RunStatus(str, enum.Enum):
    """Where a run is in its life, as run.json says (written by write_status alone) or Run.status reads it."""
    QUEUED = "queued"            # submitted, waiting for a slot
    RUNNING = "running"          # a worker (or Ray task) trains it
    FINISHED = "finished"        # trained to the end, model saved
    STOPPED = "stopped"          # stopped by a person; the partial model is saved
    FAILED = "failed"            # the training or its worker failed; run.json says why
    CANCELLED = "cancelled"      # stopped while still queued: it never started
    INTERRUPTED = "interrupted"  # its worker or server died, or a restart found it orphaned
    INCOMPLETE = "incomplete"    # read only: run.json says finished but the model file is missing

    __str__ = str.__str__        # "finished", not "RunStatus.FINISHED", in f-strings, tables and JSON
    __format__ = str.__format__


FINISHED = (RunStatus.FINISHED, RunStatus.STOPPED)  # statuses whose model is complete and usable
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)      # statuses of runs that an engine or a worker still owns
ENDED = (RunStatus.FINISHED, RunStatus.STOPPED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.INTERRUPTED)
_TRAINING: set[str] = set()  # run folders this process is training right now (see Run.status)
_TRAINING_LOCK = threading.Lock()


def default_runs_dir() -> Path:
    """Where runs live: $CLASSIFIER_LAB_RUNS or ./runs."""
    return config.RUNS.get()


class RunError(LabError, RuntimeError):
    """A run or model that cannot be found or used; the message is for the user."""


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON through a temp file and rename, so readers never see half a file."""
    path = Path(path)
    # a unique temp name per call: two threads writing the same file must not share one
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; run files are as readable as any other
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)  # an unserialisable object or a full disk: leave no temp file behind
        except OSError:
            pass
        raise


def now() -> str:
    """The local time as run files record it ("2026-12-04 21:30:00")."""
    return time.strftime("%Y-%m-%d %H:%M:%S")


def write_status(run_dir: Path, status: RunStatus | str, meta: dict | None = None, **extra) -> dict:
    """The one writer of a run's status: run.json (read from disk unless `meta` is given, and updated in place)
    gets the status, when it was reached ("created" for queued, "started" for running, "finished" for an end;
    an ended run no longer names a worker pid) and `extra`, written atomically. Returns the dict written."""
    status = RunStatus(status)
    meta = (read_json(Path(run_dir) / "run.json", {}) or {}) if meta is None else meta
    meta.update(status=status.value, **extra)
    if status is RunStatus.QUEUED:
        meta.setdefault("created", now())
    elif status is RunStatus.RUNNING:
        meta["started"] = now()
    elif status in ENDED:
        meta["finished"] = now()
        meta.pop("pid", None)
        meta.pop("pid_start", None)
    write_json_atomic(Path(run_dir) / "run.json", meta)
    return meta


def read_json(path: Path, default=None):
    """Read JSON, or `default` when missing or unreadable (a killed writer, a stray edit)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def new_run_dir(runs_dir: Path, dataset: str, arch: str) -> Path:
    """Create a fresh, uniquely named run folder."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{arch}-{secrets.token_hex(2)}"
        path = runs_dir / run_id
        path.mkdir()
        return path
    except OSError as e:
        raise RunError(f"cannot create a run in {runs_dir}: {e.strerror or e}") from None


def pid_alive(pid) -> bool:
    """Whether a process with this id runs on this machine (a zombie, ended but not yet reaped, does not)."""
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:  # 0 and negatives address process groups, not one process
        return False
    try:
        os.kill(pid, 0)
    except PermissionError:
        pass  # it exists, it just belongs to another user
    except (OSError, OverflowError):
        return False
    try:  # an orphaned worker is reaped by PID 1, which in a container may never do it
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): kill() said it exists


@dataclass
class Run:
    """What the app and CLI need to know about a saved run or a bundled model."""
    id: str
    path: Path
    meta: dict = field(default_factory=dict)
    bundled: bool = False
    model_file: Path | None = None  # a loose .keras file outside any run folder

    @property
    def status(self) -> RunStatus:
        try:
            status = RunStatus(self.meta.get("status", "incomplete"))
        except ValueError:  # a hand-edited or foreign run.json
            return RunStatus.INCOMPLETE
        if status in ACTIVE and not owner_alive(self.meta):
            return RunStatus.INTERRUPTED  # its worker or server died (killed mid-epoch or mid-save, a restart)
        if status is RunStatus.RUNNING and str(self.meta.get("pid")) == str(os.getpid()) \
                and not is_training(self.path):
            return RunStatus.INTERRUPTED  # this very process trained it, and its last run.json write failed
        if status in FINISHED and self.kind == "train" and not self.model_path.exists():
            return RunStatus.INCOMPLETE
        return status

    @property
    def kind(self) -> str:
        """"train", or "lr_find" for a learning-rate range test (no model: never offered as one)."""
        return str(self.meta.get("kind") or "train")

    @property
    def group(self) -> str:
        """What the run is for: "bundled", "lr_find", "fold" (a label search's), "sweep" or "train"."""
        if self.bundled:
            return "bundled"
        if self.kind == "lr_find":
            return "lr_find"
        if self.config.get("fold") is not None:
            return "fold"
        return "sweep" if self.meta.get("sweep") else "train"

    @property
    def usable(self) -> bool:
        return self.status in FINISHED and self.kind == "train"

    @property
    def model_path(self) -> Path:
        return Path(self.model_file) if self.model_file is not None else self.path / "model.keras"

    @property
    def config(self) -> dict:
        config = self.meta.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def dataset(self) -> str:
        return self.config.get("dataset", "")

    @property
    def label(self) -> str:
        acc = self.meta.get("test_accuracy")
        acc_s = f"{acc:.1%}" if isinstance(acc, (int, float)) else self.status
        kind = "bundled" if self.bundled else self.id
        return f"{self.dataset} · {self.config.get('arch', '?')} · {acc_s} ({kind})"

    def history(self) -> dict:
        history = read_json(self.path / "history.json", {})
        return history if isinstance(history, dict) else {}  # a damaged file reads as no history


def owner_alive(meta: dict) -> bool:
    """Whether the process that owns an active run still exists: the worker that trains it here, or the
    server that queued it (or that drives it on Ray, whose tasks end with their driver)."""
    server = meta.get("status") == "queued" or meta.get("engine") == "ray"
    return server_alive(meta) if server else alive_here(meta.get("host"), meta.get("pid"), meta.get("pid_start"))


def server_alive(meta: dict) -> bool:
    """Whether the server that queued a run still exists."""
    return alive_here(meta.get("server_host"), meta.get("server_pid"), meta.get("server_pid_start"))


def alive_here(host, pid, start: str | None = None) -> bool:
    """Whether process `pid` runs on this machine, `host` being where it was started (and `start` when)."""
    return host == os.uname().nodename and same_process(pid, start)


def process_start(pid: int | None = None) -> str | None:
    """When process `pid` (this one by default) started, as "<boot id>:<start tick>", or None without /proc."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid or os.getpid()}/stat").read_text()
        return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22, starttime
    except (OSError, IndexError):
        return None


def same_process(pid, start: str | None) -> bool:
    """Whether `pid` still names the process that started at `start` (recorded with it): a pid the kernel gave
    to another process since, or before a reboot, does not; without a recorded start, any live pid does."""
    if not pid_alive(pid):
        return False
    return start is None or process_start(int(pid)) in (None, start)


def run_path(run_id: str, runs_dir: Path | None = None) -> Path:
    """The folder of a run id from a link or a form; RunError for anything but a plain existing run name."""
    runs_dir = Path(runs_dir or default_runs_dir())
    run_id = str(run_id or "")
    if Path(run_id).name != run_id or run_id in ("", ".", "..") or run_id.startswith(".") \
            or not (runs_dir / run_id).is_dir():
        raise RunError(f"no run {run_id[:80]!r} in {runs_dir}")
    return runs_dir / run_id


def is_training(path: Path) -> bool:
    """Whether this process is training into the run folder `path` right now."""
    with _TRAINING_LOCK:
        return str(Path(path).resolve()) in _TRAINING


def set_training(path: Path, active: bool) -> None:
    """Mark a run folder as being trained by this process (train() does, around its work)."""
    key = str(Path(path).resolve())
    with _TRAINING_LOCK:
        (_TRAINING.add if active else _TRAINING.discard)(key)


def load_run(path: Path, bundled: bool = False) -> Run:
    """Read a run folder; an unreadable run.json gives an 'incomplete' run, not an error."""
    path = Path(path)
    meta = read_json(path / "run.json", {})
    return Run(path.name, path, meta if isinstance(meta, dict) else {}, bundled)  # valid JSON, but not a run


def list_runs(runs_dir: Path | None = None) -> list[Run]:
    """All runs in the runs folder, newest first."""
    runs_dir = Path(runs_dir or default_runs_dir())
    if not runs_dir.is_dir():
        return []
    runs = [load_run(p) for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(runs, key=lambda r: str(r.meta.get("created", r.id)), reverse=True)


def bundled_models() -> list[Run]:
    """The pretrained defaults shipped in assets/models (one folder per dataset)."""
    if not BUNDLED_DIR.is_dir():
        return []
    runs = [load_run(p, bundled=True) for p in sorted(BUNDLED_DIR.iterdir()) if (p / "run.json").exists()]
    return [r for r in runs if r.usable]


def resolve(spec: str, runs_dir: Path | None = None) -> Run:
    """A run from a bundled name (mnist), a run id, a run folder or a .keras file path."""
    runs_dir = Path(runs_dir or default_runs_dir())
    for run in bundled_models():
        if spec == run.id:
            return run
    p = Path(spec)
    if p.suffix == ".keras" and p.is_file():
        run = load_run(p.parent)
        if run.model_path.resolve() == p.resolve():
            return run
        return Run(p.stem, p.parent, {"status": "finished"}, model_file=p)
    if p.is_dir() and (p / "run.json").exists():
        return load_run(p)
    if p.name == spec and spec not in ("", ".", "..") and (runs_dir / spec).is_dir():
        return load_run(runs_dir / spec)
    names = ", ".join(r.id for r in bundled_models()) or "none"
    raise RunError(f"no model {spec!r}: give a .keras file, a run id from {runs_dir}, or a bundled name ({names})")


def delete_run(run: Run, runs_dir: Path | None = None) -> None:
    """Delete a run folder; refuses anything outside the runs folder (and bundled models)."""
    runs_dir = Path(runs_dir or default_runs_dir()).resolve()
    target = run.path.resolve()
    if run.bundled or target.parent != runs_dir:
        raise RunError(f"refusing to delete {run.path}: not a run in {runs_dir}")
    if load_run(target).status in ACTIVE:  # re-read: it may have started since it was listed
        raise RunError(f"run {run.id} is still training or queued: stop it first")
    shutil.rmtree(target)
