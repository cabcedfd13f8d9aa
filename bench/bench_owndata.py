"""Own small datasets with the `auto` architecture: test accuracy and CPU time on generated 3- and 5-class
datasets (core.data.synthetic: shapes on coloured backgrounds, colours, drawn sketches; 60 images per class, 80/20
split), imported through core.data.owndata like an upload. Target: ≥ 90 % test accuracy within 2 CPU-minutes.
Each training runs in a process of its own, so its CPU time is its own. Quick mode: 3 classes, shapes only.

    python bench/bench_owndata.py [--quick]
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import common

TARGET_ACC, TARGET_CPU_S = 0.90, 120.0
PER_CLASS = 60
CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
from core.train.trainer import TrainConfig, train
t0 = time.perf_counter()
run = train(TrainConfig(dataset={name!r}, arch="auto", seed={seed}))
r = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"acc": run.meta["test_accuracy"], "wall": time.perf_counter() - t0,
                   "cpu": r.ru_utime + r.ru_stime, "fit": run.meta["fit_seconds"],
                   "recipe": run.meta.get("recipe"), "n_test": run.meta["data"]["n_test"],
                   "peak_mb": r.ru_maxrss / 1024}}))
"""


def train_child(name: str, env: dict, seed: int = 0) -> dict:
    """train(auto) on an own dataset in a fresh process: its accuracy, wall and CPU seconds (TF import included)."""
    code = CHILD.format(root=str(common.ROOT), name=name, seed=seed)
    out = subprocess.run([common.PYTHON, "-c", code], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"training {name} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[dict]:
    from core.data import synthetic, uploads

    cases = [("shapes", 3)] if quick else [(k, n) for n in (3, 5) for k in synthetic.KINDS]
    rows, tmp = [], Path(tempfile.mkdtemp(prefix="bench-owndata-"))
    env = {**os.environ, "CLASSIFIER_LAB_DATA": str(tmp / "data"), "CLASSIFIER_LAB_RUNS": str(tmp / "runs")}
    os.environ.update(CLASSIFIER_LAB_DATA=env["CLASSIFIER_LAB_DATA"])
    try:
        for kind, n in cases:
            name = f"{kind}{n}"
            src = synthetic.make(tmp / "src" / name, kind, n, PER_CLASS, seed=1)
            report = uploads.import_source(src, name)
            assert not report.problems, report.problems
            common.log(f"owndata: auto on {name} ({n} classes × {PER_CLASS})")
            r = train_child(name, env)
            common.log(f"  test accuracy {r['acc']:.3f} on {r['n_test']} images, {r['cpu']:.0f} CPU-s, "
                       f"{r['wall']:.0f} s wall (fit {r['fit']:.0f} s), recipe {r['recipe']}")
            rows.append(common.row(
                "owndata", f"auto on {kind}, {n} classes: test accuracy", round(100 * r["acc"], 1), "%",
                target=f"≥ {100 * TARGET_ACC:g} % in ≤ {TARGET_CPU_S / 60:g} CPU-min",
                ok=r["acc"] >= TARGET_ACC and r["cpu"] <= TARGET_CPU_S,
                notes=f"{n} × {PER_CLASS} images, {r['n_test']} test; {r['cpu']:.0f} CPU-s for the whole process "
                      f"(TensorFlow import, loading, fit, evaluation, saving), {r['wall']:.0f} s wall, "
                      f"fit {r['fit']:.0f} s; recipe {r['recipe']['kind']}, side {r['recipe']['model']['side']}, "
                      f"{r['recipe']['steps_per_epoch']} steps/epoch"))
            rows.append(common.row("owndata", f"auto on {kind}, {n} classes: CPU time", round(r["cpu"], 1), "s",
                                   notes=f"peak RSS {r['peak_mb']:.0f} MB"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run))
