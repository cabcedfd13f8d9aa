"""Shared benchmark helpers: timing, A/B alternation, stats, rows and tables, machine details.

Every benchmark script has `run(quick: bool) -> list[dict]` (its rows) and calls `main(run)` when run
alone. A row is {"bench", "metric", "value", "unit", "spread", "target", "status", "notes"}; status is
PASS or MISS for a figure with a target, "" for one that is only reported.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# offline and quiet before anything imports core or TensorFlow (the app itself is started as users do)
os.environ.setdefault("CLASSIFIER_LAB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PYTHON = sys.executable


# --- timing and statistics -------------------------------------------------------------------------------

def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def alternate(a, b, repeats: int, log=print) -> list[tuple]:
    """Call a() and b() `repeats` times each, interleaved A B, B A, A B, … so drift in the machine's
    load hits both alike. Each call returns a figure, or a tuple whose first item is the headline
    figure. Returns the (a, b) result pairs in round order."""
    pairs = []
    for i in range(repeats):
        if i % 2 == 0:
            va = a()
            vb = b()
        else:
            vb = b()
            va = a()
        show = lambda v: " ".join(f"{x:.4g}" for x in (v if isinstance(v, tuple) else (v,))  # noqa: E731
                                  if isinstance(x, (int, float)))  # details (a dict of figures) stay out of the log
        ha, hb = (v[0] if isinstance(v, tuple) else v for v in (va, vb))
        log(f"  round {i + 1}/{repeats}: A {show(va)}  B {show(vb)}  A/B {ha / hb:.3f}")
        pairs.append((va, vb))
    return pairs


def rotate(fns: dict, repeats: int, log=print) -> list[dict]:
    """Call every function of `fns` (name -> function) once a round, `repeats` rounds, the order rotated each
    round (A B C, B C A, C A B, …) so drift in the machine's load hits all alike. Each returns a figure, or a
    tuple whose first item is the headline figure. Returns {name: result} per round."""
    names, rounds = list(fns), []
    for i in range(repeats):
        order = names[i % len(names):] + names[:i % len(names)]
        results = {name: fns[name]() for name in order}
        head = {n: (v[0] if isinstance(v, tuple) else v) for n, v in results.items()}
        log(f"  round {i + 1}/{repeats} ({' '.join(order)}, load {os.getloadavg()[0]:.1f}): "
            + "  ".join(f"{n} {head[n]:.4g}" for n in names))
        rounds.append(results)
    return rounds


def percentile(values, q: float) -> float:
    """Linear-interpolated percentile, q in 0..100."""
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values, fmt: str = "{:.3g}") -> str:
    """'min–max' of the values."""
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}" if values else ""


# --- memory of a process ---------------------------------------------------------------------------------

def proc_status_mb(pid: int | str = "self", key: str = "VmRSS") -> float:
    """A memory line of /proc/<pid>/status (VmRSS, VmHWM, …) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


# --- rows ------------------------------------------------------------------------------------------------

def row(bench: str, metric: str, value, unit: str = "", *, spread: str = "", target: str = "",
        ok: bool | None = None, notes: str = "", where: str = "") -> dict:
    """One table row; ok=None means no target; where ("browser", "CLI", "in-process") defaults to its bench's."""
    status = "" if ok is None else ("PASS" if ok else "MISS")
    return {"bench": bench, "metric": metric, "value": value, "unit": unit, "spread": spread,
            "target": target, "status": status, "notes": notes} | ({"where": where} if where else {})


def fmt_value(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


COLUMNS = ("bench", "metric", "value", "unit", "spread", "target", "status")


def table_text(rows: list[dict]) -> str:
    cells = [[fmt_value(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) if cells else len(c) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(x.ljust(w) for x, w in zip(c, widths)) for c in cells]
    return "\n".join(lines)


def table_markdown(rows: list[dict]) -> str:
    head = ["benchmark", "metric", "measured", "median", "unit", "min–max", "target", "result", "notes"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["bench"], r["metric"], r.get("where", ""), fmt_value(r["value"]), r["unit"], r["spread"],
                 r["target"], f"**{r['status']}**" if r["status"] else "", r["notes"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


# --- machine ---------------------------------------------------------------------------------------------

def _version(dist: str) -> str:
    for name in (dist, dist.replace("-", "_")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def _commit() -> str:
    """The checked-out commit, and whether the tree differs from it (the figures then come from no commit)."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" with uncommitted changes" if dirty else "")


def machine_info() -> dict:
    """CPU, cores, RAM, load, versions and date, without importing TensorFlow."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "commit": _commit(),
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(mem_kb / 1024**2, 1),
        "load_avg": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "tensorflow": _version("tensorflow-cpu") if _version("tensorflow-cpu") != "not installed"
        else _version("tensorflow"),
        "keras": _version("keras"),
        "streamlit": _version("streamlit"),
        "numpy": _version("numpy"),
        # e.g. sched_vcpu_pack: a VM kernel that may pack busy threads onto fewer vCPUs (see the analysis)
        "kernel_sched": " ".join(t for t in Path("/proc/cmdline").read_text().split() if t.startswith("sched"))
        or "(no sched_* boot options)",
    }


# --- entry point -----------------------------------------------------------------------------------------

def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def main(run) -> int:
    """Command line of one benchmark: --quick, --json FILE (for run_all.py)."""
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    p.add_argument("--json", help="also write the rows to this file")
    args = p.parse_args()
    rows = run(args.quick)
    print(table_text(rows), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    return 0


# --- models ----------------------------------------------------------------------------------------------

def bundled_run(dataset: str):
    """The bundled model's run for the dataset (assets/models): what a newcomer's first visit uses."""
    from core.store import runs

    run = runs.resolve(dataset)
    if not run.bundled:
        raise SystemExit(f"no bundled {dataset} model in assets/models (scripts/train_defaults.py makes it)")
    return run


# --- the app in a real server and browser ----------------------------------------------------------------

CHROMIUM = os.environ.get("CLASSIFIER_LAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(runs_dir: str, log_path: str, root: Path = ROOT, **extra_env):
    """`streamlit run streamlit_app.py` as a user starts it (headless, its own process group), from the checkout
    `root` (this one unless another is compared): (process, url). The environment is the user's (no
    CLASSIFIER_LAB_OFFLINE) plus `extra_env`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CLASSIFIER_LAB_OFFLINE"}
    env.update(CLASSIFIER_LAB_RUNS=str(runs_dir), PYTHONUNBUFFERED="1", **extra_env)
    cmd = [PYTHON, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--server.fileWatcherType", "none"]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc, url: str, timeout: float = 180.0, every: float = 0.05) -> float:
    """Poll the server's health endpoint; perf_counter() when it first answers."""
    import urllib.request

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(every)
    raise RuntimeError(f"streamlit did not answer within {timeout:.0f} s")


def stop_app(proc) -> None:
    """SIGTERM to the server's own process group, SIGKILL if it lingers."""
    import signal
    import subprocess

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue


def launch_browser(pw):
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextlib.contextmanager
def app_in_chromium(prefix: str, **extra_env):
    """The app served offline from an empty temp runs folder, and a headless Chromium: yields (server, url,
    browser); both stopped after."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        proc, url = start_app(d, os.path.join(d, "streamlit.log"), CLASSIFIER_LAB_OFFLINE="1", **extra_env)
        try:
            wait_healthy(proc, url)
            with sync_playwright() as pw:
                browser = launch_browser(pw)
                try:
                    yield proc, url, browser
                finally:
                    browser.close()
        finally:
            stop_app(proc)


def load_note(start: tuple) -> str:
    """The 1-minute load average at the start (os.getloadavg() then) and now, for a row's notes."""
    return (f"load avg (1 min) {start[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
            f"on {os.cpu_count()} cores")


def wait_idle(page, timeout: float = 120_000) -> None:
    """Until the app's script run has finished and nothing stale is left on the page."""
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning'"
        " && !document.querySelector('[data-stale=true]')", timeout=timeout)


# --- CPU of processes ------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the process's own threads (not its children); nan once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK


def descendants(pid: int) -> list[int]:
    """Every live process below pid (children, their children, …)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CpuSampler:
    """Samples the CPU seconds of named groups of processes (name -> function giving their pids) every
    `every` s in a thread; cpu_percent(name, t0, t1) is a group's CPU % of one core between two times."""

    def __init__(self, groups: dict, every: float = 0.5):
        import threading

        self.groups, self.every = groups, every
        self.samples: list[tuple[float, dict]] = []
        self._seen: dict[str, dict[int, float]] = {name: {} for name in groups}  # pid -> last CPU s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while True:
            self.sample()
            if self._done.wait(self.every):
                return

    def sample(self) -> None:
        now, totals = time.time(), {}
        for name, pids in self.groups.items():
            seen = self._seen[name]
            for pid in pids():
                cpu = cpu_seconds(pid)
                if cpu == cpu:  # a process that has gone keeps its last figure in the total
                    seen[pid] = cpu
            totals[name] = sum(seen.values())
        self.samples.append((now, totals))

    def _at(self, name: str, t: float) -> float:
        """The group's CPU seconds at time t, interpolated between samples."""
        pts = [(ts, v[name]) for ts, v in self.samples]
        before = [p for p in pts if p[0] <= t] or pts[:1]
        after = [p for p in pts if p[0] >= t] or pts[-1:]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 == t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)

    def cpu_percent(self, name: str, t0: float, t1: float) -> float:
        return (self._at(name, t1) - self._at(name, t0)) / max(t1 - t0, 1e-9) * 100


def fit_window(run_dir: Path) -> tuple[float, float]:
    """(epoch time when fit began, when it ended) from the run's live feed: its 'training' and
    'evaluating' status lines (the feed's own clock, time.time())."""
    start = end = float("nan")
    for raw in (Path(run_dir) / "feed.jsonl").read_text().splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        status = line.get("s", {}).get("status")
        if status == "training" and start != start:
            start = line["t"]
        elif status == "evaluating":
            end = line["t"]
    return start, end


# --- the Train page --------------------------------------------------------------------------------------

def open_train_form(page, url: str, settings: dict) -> None:
    """The Train page with its form filled from the address (ui.settings reads dataset, arch, epochs,
    batch, samples, val, seed from it), as a shared link opens it."""
    from urllib.parse import urlencode

    from playwright.sync_api import expect

    page.goto(f"{url}/train?{urlencode(settings)}")
    expect(page.get_by_role("button", name="Start training")).to_be_enabled(timeout=180_000)
    wait_idle(page, 180_000)


def start_and_watch(page, runs_dir: Path, timeout: float = 1800.0, started=None) -> Path:
    """Click Start training, call started(page) if given (the live view is up then), keep the page open while
    it redraws the live run, until the run has ended and the page shows its result; the run's folder."""
    from playwright.sync_api import expect

    before = {p.name for p in Path(runs_dir).iterdir()}
    page.get_by_role("button", name="Start training").click()
    if started is not None:
        started(page)
    deadline = time.monotonic() + timeout
    run_dir = None
    while time.monotonic() < deadline:
        if run_dir is None:
            new = [p for p in Path(runs_dir).iterdir() if p.name not in before and (p / "run.json").is_file()]
            run_dir = new[0] if new else None
        if run_dir is not None:
            status = json.loads((run_dir / "run.json").read_text()).get("status")
            if status not in ("queued", "running"):
                break
        time.sleep(0.5)
    else:
        raise TimeoutError(f"the training started from the page did not end within {timeout:.0f} s")
    if status != "finished":
        raise RuntimeError(f"run {run_dir.name} {status}: {json.loads((run_dir / 'run.json').read_text()).get('error')}")
    expect(page.get_by_text(re.compile(rf"Run {re.escape(run_dir.name)} finished"))).to_be_visible(timeout=120_000)
    return run_dir
