"""Big folders streamed from disk (issue #13 part 5): peak memory of the training worker on a large generated
folder, against the target ≤ 1.5 GB for 50,000 images. The folder (core.data.synthetic shapes, 120×90 JPEGs in
3 classes, written straight into a temp data root) is trained through core.engine.scheduler.Engine — a real
`python -m core.engine.worker` process — with `auto`, 1 epoch, at the default 180×180 (97 kB an image decoded,
4.9 GB for 50,000 in memory). The worker's VmHWM (/proc/<pid>/status) is sampled every 0.2 s until it
exits, and checked against getrusage(RUSAGE_CHILDREN).ru_maxrss once it is reaped. The first run decodes
the folder into the cache file; a second load (in this process) shows it reused. Full mode: 50,000 images
at the default threshold (1 GB: the folder streams as any such folder would); quick mode: 3,000 images,
streaming forced with CLASSIFIER_LAB_STREAM_MB=0.

    python bench/bench_streaming.py [--quick] [--images N]
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import common

TARGET_MB = 1536
FULL_N, QUICK_N = 50_000, 3_000
CLASSES = ("circle", "square", "triangle")
PART = 500  # images generated per task


def _generate(args) -> int:
    """One task of images: class `shape`, numbers start..start+count, its own seed."""
    import numpy as np

    from core.data import synthetic

    folder, shape, start, count = args
    rng = np.random.default_rng(start * 7919 + CLASSES.index(shape))
    for i in range(start, start + count):
        synthetic.shape_image(rng, shape).save(Path(folder) / shape / f"{shape}_{i}.jpg", quality=90)
    return count


def generate(folder: Path, n: int) -> float:
    """n images split evenly over the classes, made by one process per core; seconds taken."""
    per = n // len(CLASSES)
    for c in CLASSES:
        (folder / c).mkdir(parents=True, exist_ok=True)
    tasks = [(str(folder), c, s, min(PART, per - s)) for c in CLASSES for s in range(0, per, PART)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        list(pool.map(_generate, tasks))
    return time.perf_counter() - t0


def _feed_times(run_dir: Path) -> dict:
    """Time of each status's first feed line, and the worker's pid."""
    out = {}
    for line in (run_dir / "feed.jsonl").read_text().splitlines() if (run_dir / "feed.jsonl").exists() else []:
        try:
            line = json.loads(line)
        except ValueError:
            continue
        d = line.get("s") or {}  # a line's state changes (core/engine/feed.py)
        if d.get("pid") and "pid" not in out:
            out["pid"] = d["pid"]
        if d.get("status") and d["status"] not in out:
            out[d["status"]] = line["t"]
    return out


def train_watched(name: str, runs_dir: Path) -> dict:
    """One engine run of `auto` on the dataset, its worker's memory sampled until it exits."""
    import numpy as np

    from core.engine.scheduler import Engine
    from core.train.trainer import TrainConfig

    engine = Engine(runs_dir, slots=1)
    peak, samples, done = 0.0, [], threading.Event()
    try:
        run_id = engine.submit(TrainConfig(dataset=name, arch="auto", epochs=1))
        run_dir = runs_dir / run_id

        def sample():
            nonlocal peak
            while not done.is_set():
                pid = _feed_times(run_dir).get("pid")
                if pid:
                    try:
                        peak = max(peak, common.proc_status_mb(pid, "VmHWM"))
                        samples.append(common.proc_status_mb(pid, "VmRSS"))
                    except (OSError, ValueError):
                        pass
                time.sleep(0.2)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        run = engine.wait(run_id)
        wall = time.perf_counter() - t0
        done.set()
        watcher.join()
    finally:
        engine.close()
    if run.meta.get("status") != "finished":
        raise RuntimeError(f"the run ended {run.meta.get('status')}: {run.meta.get('error')}\n"
                           + (run_dir / "worker.log").read_text()[-2000:])
    times = _feed_times(run_dir)
    phase = lambda a, b: times[b] - times[a] if a in times and b in times else float("nan")  # noqa: E731
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"peak_mb": peak, "maxrss_children_mb": maxrss, "wall": wall, "meta": run.meta,
            "load_s": phase("loading data", "compiling"), "eval_s": phase("evaluating", "saving"),
            "test_probs": len(np.load(run_dir / "test_probs.npy")), "n_samples": len(samples)}


def run(quick: bool, images: int | None = None) -> list[dict]:
    n = images or (QUICK_N if quick else FULL_N)
    tmp = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    os.environ.update(CLASSIFIER_LAB_DATA=str(tmp / "data"), CLASSIFIER_LAB_RUNS=str(tmp / "runs"))
    if quick:
        os.environ["CLASSIFIER_LAB_STREAM_MB"] = "0"  # 3,000 images are 290 MB decoded: force streaming
    rows = []
    try:
        common.log(f"streaming: generating {n:,} images")
        gen_s = generate(tmp / "data" / "big", n)
        src_mb = sum(f.stat().st_size for f in (tmp / "data" / "big").rglob("*.jpg")) / 2**20
        common.log(f"  {gen_s:.0f} s ({n / gen_s:.0f} images/s), {src_mb:.0f} MB of JPEGs")
        r = train_watched("big", tmp / "runs")
        meta = r["meta"]
        cache = sorted((tmp / "data" / ".cache" / "decoded").glob("*.npy"))
        cache_mb = sum(f.stat().st_size for f in cache) / 2**20
        mtime = [f.stat().st_mtime_ns for f in cache]
        from core.data import datasets

        t0 = time.perf_counter()
        again = datasets.load_dataset("big")  # a later run's load: finds the cache by the files' key
        reload_s = time.perf_counter() - t0
        reused = [f.stat().st_mtime_ns for f in cache] == mtime and "streamed" in again.source
        n_train, fit = meta["data"]["n_train"], meta["fit_seconds"]
        steps = (meta.get("recipe") or {}).get("steps_per_epoch")
        common.log(f"  worker peak {r['peak_mb']:.0f} MB (VmHWM; ru_maxrss {r['maxrss_children_mb']:.0f} MB), "
                   f"wall {r['wall']:.0f} s: load+decode {r['load_s']:.0f} s, fit {fit:.0f} s, "
                   f"eval {r['eval_s']:.0f} s; "
                   f"cache {cache_mb:.0f} MB; reload {reload_s:.2f} s (reused: {reused}); "
                   f"test acc {meta['test_accuracy']:.3f}")
        decoded_gb = n * 180 * 180 * 3 / 1e9
        rows.append(common.row(
            "streaming", f"worker peak memory, {n:,}-image folder", round(r["peak_mb"]), "MB",
            target=f"≤ {TARGET_MB} MB", ok=r["peak_mb"] <= TARGET_MB,
            notes=f"VmHWM of the engine's worker sampled every 0.2 s ({r['n_samples']} samples), "
                  f"getrusage(RUSAGE_CHILDREN) {r['maxrss_children_mb']:.0f} MB; {decoded_gb:.1f} GB decoded in "
                  f"memory otherwise; `auto`, 1 epoch at 180×180, {n_train:,} train / {meta['data']['n_val']:,} val / "
                  f"{r['test_probs']:,} test (test_probs.npy)"))
        bs = meta["config"]["batch_size"]
        seen = (steps or -(-n_train // bs)) * bs
        rows.append(common.row("streaming", "training throughput, streamed", round(seen / fit, 1), "images/s",
                               notes=f"fit {fit:.0f} s for {seen // bs} steps of {bs} (recipe side "
                                     f"{(meta.get('recipe') or {}).get('model', {}).get('side')}); the machine is "
                                     "shared"))
        rows.append(common.row("streaming", "first load: decode into the cache", round(r["load_s"], 1), "s",
                               notes=f"{n / r['load_s']:.0f} images/s in the worker (Pillow, threads); whole run "
                                     f"{r['wall']:.0f} s, evaluation {r['eval_s']:.0f} s"))
        rows.append(common.row("streaming", "cache file size", round(cache_mb), "MB",
                               notes=f"uint8 .npy, {cache_mb * 2**20 / n / 1e3:.0f} kB an image; the source JPEGs "
                                     f"{src_mb:.0f} MB"))
        rows.append(common.row("streaming", "later load (cache reused)", round(reload_s, 2), "s",
                               target="reused", ok=reused,
                               notes="load_dataset in a fresh process state: stats the files, finds the cache by "
                                     "their key, reads nothing else"))
        rows.append(common.row("streaming", "generating the folder", round(gen_s, 1), "s",
                               notes=f"{n:,} JPEGs by core.data.synthetic, one process per core"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    if "--images" in sys.argv:  # a size between quick and full, for a machine short of time or disk
        k = sys.argv.index("--images")
        count = int(sys.argv[k + 1])
        del sys.argv[k:k + 2]
        raise SystemExit(common.main(lambda quick: run(quick, count)))
    raise SystemExit(common.main(run))
