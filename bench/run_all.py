"""Run every benchmark, print one table and regenerate docs/benchmarks.md.

    python bench/run_all.py            # full: about an hour on a 2-core machine (the presets take most)
    python bench/run_all.py --quick    # small sizes: a few minutes
    python bench/run_all.py --only predict mistakes   # rerun these, keep the other results

Each benchmark runs in a process of its own (bench/bench_<name>.py --json FILE), so one's TensorFlow
state, caches and memory don't colour the next. The document is rewritten after each benchmark, so an
interrupted run still leaves what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

BENCHES = ("training", "predict", "mistakes", "startup", "memory", "presets")
DOC = common.ROOT / "docs" / "benchmarks.md"

METHOD = """\
## How it is measured

- **Ratios in one run.** The machine may be shared, so absolute times move with other people's load.
  Comparisons (train() against a bare `model.fit`) alternate A and B in the same process (A B, B A, …)
  and report the median of the per-round ratios with min–max. CPU-time ratios, far less sensitive to
  other processes, are shown beside the wall-clock ones.
- **Training overhead** (`bench_training.py`): `core.training.train` with its LiveMetrics and RunWriter
  callbacks and a thread reading the MetricsStore once a second (as the Train page does), against the
  same model builder, compile, split, batch size and epochs in `model.fit(verbose=0)`. Throughput =
  training samples × epochs / seconds in `fit`.
- **Prediction latency** (`bench_predict.py`): `predict_image` (preprocess + model) on 280×280 RGBA
  canvas drawings made with PIL, bundled MNIST model; p50/p95 over all calls after 5 warm-up calls.
- **Mistakes page** (`bench_mistakes.py`): test-set predictions + `analysis.summary` + `analysis.mistakes`
  for Fashion-MNIST's 10,000 test images; then the page through Streamlit's AppTest (the entrypoint with
  its navigation), first run then reruns with the predictions cached. AppTest times the server side of
  a rerun (the script and its messages), not the browser's drawing.
- **Start-up** (`bench_startup.py`): `streamlit run streamlit_app.py` (headless) to the home page's `h1`
  visible in headless Chromium (`/usr/bin/chromium`); the first start is "cold", the median of the
  others "warm". The browser is started beforehand.
- **Memory** (`bench_memory.py`): VmHWM/VmRSS from `/proc/<pid>/status` of the server process after
  Playwright visits Mistakes on MNIST and then Fashion-MNIST; RSS of one process after each of 10
  consecutive short trainings.
- **Presets** (`bench_presets.py`): every architecture in `core.models.ARCHITECTURES` trained by
  `train()`; full mode uses the whole training split and the architecture's default epochs, stopped
  after 10 minutes of fitting (the target's budget), quick mode a 3,000-sample subset for 1 epoch.
"""

LIMITS = """\
## What limits the figures (analysis of 2026-11-23, 2-core AMD EPYC shared with other work, load 5–15)

- **Start-up** is three nearly equal parts: the server (importing Streamlit, which also scans every
  installed distribution for components) answers after ~2.5–4 s; Chromium then loads and runs
  Streamlit's front-end bundle (1.4–4 s on an already running server); the home script itself takes
  0.2–0.8 s. The app's own share is the last one: TensorFlow's background import (which holds the GIL
  while its 1 GB shared library loads) used to start with the first page and cost it ~1 s; it now
  waits 2 s (`ui/state.py`, `WARM_DELAY_S`). 3 s needs an idle machine.
- **Training overhead**: the app's callbacks cost microseconds per batch (row "callbacks' cost per
  batch") against milliseconds per step, well under 1 %. Under a load average of 5–15 single
  rounds' wall-clock ratios ranged from 0.45 to 1.5 and two full runs gave dense medians of 0.77 and
  1.33, so one run's median can miss 0.95 (or beat 1) by chance; the CPU-time ratio (≈ 1.0) is the
  steady figure. train() can even be faster: with a batch-level callback Keras runs the callbacks
  inline, while a bare fit hands every batch's callbacks to a thread pool.
- **cnn_strong on Fashion-MNIST** needs ~0.55 CPU-seconds per 128-image step here (measured); at a
  load of ~5 the 10 minutes held 2 of its 8 epochs (0.7 s a step) and reached 91.6 %. The bundled
  model's validation accuracy (10-epoch cosine schedule) passed 92.5 % at epoch 5: 2,110 steps, ~19
  CPU-minutes, i.e. ~10 minutes of both cores only with perfect scaling on an idle machine. A
  schedule sized to the budget (2–3 epochs) may come close; untested. XLA `jit_compile` was tried:
  2× slower on this CPU.
- **Memory growth over trainings** is TensorFlow's: a bare `model.fit` loop grows the same (~6 MB per
  small dense training, more for CNNs) and neither `keras.backend.clear_session()` nor
  `malloc_trim` returns it (tensorflow/tensorflow#61791, keras-team/tf-keras#286). Only a training
  process per run would bound it; the server's other memory is bounded by its caches (≤ 4 datasets,
  ≤ 4 models, ≤ 8 probability arrays).
"""


def run_bench(name: str, quick: bool) -> tuple[list[dict], float]:
    """Run bench_<name>.py in its own process; its rows (or one ERROR row) and its wall time."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    cmd = [common.PYTHON, str(Path(__file__).with_name(f"bench_{name}.py")), "--json", str(out)]
    if quick:
        cmd.append("--quick")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=common.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = ""
    for line in proc.stderr:  # progress as it comes; the rows come back as JSON
        sys.stderr.write(line)
        last = line.strip() or last
    proc.wait()
    seconds = time.perf_counter() - t0
    try:
        if proc.returncode != 0:
            return [common.row(name, "benchmark failed", "", notes=last[:200]) | {"status": "ERROR"}], seconds
        return json.loads(out.read_text()), seconds
    finally:
        out.unlink(missing_ok=True)


def markdown(info: dict, rows: list[dict], quick: bool, done: list[str], todo: list[str], took: dict) -> str:
    targets = [r for r in rows if r["status"]]
    lines = [
        "# Benchmarks",
        "",
        "What users feel, measured by `bench/` and written here by `python bench/run_all.py"
        + (" --quick`" if quick else "`") + ". Targets are checked by the benchmarks (PASS/MISS), not by "
        "timed unit tests.",
        "",
        f"**Mode:** {'quick (small sizes)' if quick else 'full'}"
        + (f" — **incomplete:** not run yet: {', '.join(todo)}" if todo else ""),
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", "## Targets", "", "| target | figure | result |", "|---|---|---|"]
    lines += [f"| {r['bench']}: {r['metric']} {r['target']} | {common.fmt_value(r['value'])} {r['unit']} | "
              f"**{r['status']}** |" for r in targets]
    lines += ["", "## All figures", "", common.table_markdown(rows), "",
              "Benchmark wall times: " + ", ".join(f"{n} {took[n] / 60:.1f} min" for n in done) + ".", "",
              METHOD, "", LIMITS]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, a few minutes in all")
    p.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    p.add_argument("--out", default=str(DOC), help=f"the Markdown file to write (default {DOC})")
    args = p.parse_args()
    names = [n for n in BENCHES if not args.only or n in args.only]
    info = common.machine_info()
    info["load_avg"] = f"{info['load_avg']} (1/5/15 min, at the start)"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results, took = {}, {}
    saved = out.with_suffix(".json")  # every row, so --only can rerun some and keep the others
    if args.only and saved.exists():
        old = json.loads(saved.read_text())
        if old.get("quick") == args.quick:
            results, took = old["results"], old["took"]
            info["note"] = (f"{', '.join(names)} rerun on this date; the other figures are from "
                            f"{old.get('date', 'an earlier run')}")
    for i, name in enumerate(names):
        common.log(f"=== {name} ({i + 1}/{len(names)})")
        results[name], took[name] = run_bench(name, args.quick)
        info["load_avg_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (after the last)"
        done = [n for n in BENCHES if n in results]
        rows = [r for n in done for r in results[n]]
        out.write_text(markdown(info, rows, args.quick, done, names[i + 1:], took))
        saved.write_text(json.dumps({"quick": args.quick, "date": info["date"], "info": info,
                                      "results": results, "took": took}, indent=1))
    print(common.table_text(rows))
    misses = [r for r in rows if r["status"] in ("MISS", "ERROR")]
    print(f"\n{sum(r['status'] == 'PASS' for r in rows)} PASS, {len(misses)} MISS/ERROR; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
