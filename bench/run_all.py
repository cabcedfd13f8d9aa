"""Run every benchmark, print one table and regenerate docs/benchmarks.md.

    python bench/run_all.py            # full: ~80 min on a quiet 2-core machine (presets and watched ~23 each)
    python bench/run_all.py --quick    # small sizes: a few minutes
    python bench/run_all.py --only predict mistakes   # rerun these, keep the other results
    python bench/run_all.py --render   # rewrite the Markdown from docs/benchmarks.json (after editing analysis.md)

Each benchmark runs in a process of its own (bench/bench_<name>.py --json FILE), so one's TensorFlow
state, caches and memory don't colour the next. The document is rewritten after each benchmark, so an
interrupted run still leaves what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

BENCHES = ("training", "watched", "predict_browser", "pages_browser", "predict", "mistakes", "inside", "startup",
           "memory", "presets", "export", "tuning", "owndata", "fewshot", "labels", "own_labels", "streaming")
DOC = common.ROOT / "docs" / "benchmarks.md"
# Where each benchmark takes its figures, unless a row says otherwise (the CLI-run rows of "watched")
WHERE = {"watched": "browser", "predict_browser": "browser", "pages_browser": "browser", "startup": "browser",
         "memory": "browser"}

METHOD = """\
## How it is measured

- **Where.** Each row's "measured" column says where its figure is taken: in the browser (the real app in
  headless Chromium, timed in the page or from the person's side), through the CLI (`python -m core …` as a
  user runs it), or in-process (the core's functions, or a page through AppTest: breakdowns of the above).

- **Ratios in one run.** The machine may be shared, so absolute times move with other people's load.
  Comparisons (train() against a bare `model.fit`) alternate A and B in the same process (A B, B A, …)
  and report the median of the per-round ratios with min–max. CPU-time ratios, far less sensitive to
  other processes, are shown beside the wall-clock ones.
- **Callbacks overhead** (`bench_training.py`): `core.train.trainer.train` as a worker runs it (LiveMetrics
  and RunWriter callbacks, the live feed appended to feed.jsonl by a Publisher), against the same model
  builder, compile, split, batch size and epochs in `model.fit(verbose=0)`, both in the benchmark's
  process. Throughput = training samples × epochs / seconds in `fit`. What a user waits for is *watched*.
- **Watched training** (`bench_watched.py`, issues #12 and #27): the real app (`streamlit run`, offline, a
  temp runs folder) with the Train page open in headless Chromium; the training is started with the form's
  Start training (settings from the page's address) and the page stays open, redrawing as a user's does,
  until the result shows: at the default cadence (progress line every 2.5 s, curves every 5 s) and with
  "every second" clicked. Against `python -m core train` with the same settings. The three are rotated
  round by round (headless, default, every second; then default, every second, headless; …), 5 rounds; fits of
  30–45 s on a quiet machine (cnn 54,000 samples × 5 epochs, dense × 10), longer under load. All train in
  a worker process; throughput = `data.n_train` × `epochs_done` / `fit_seconds` from each run's run.json.
  CPU % (of one core, from /proc/<pid>/stat) of the server, of Chromium (all its processes, and its page
  renderer alone) and of the worker are sampled every 0.5 s and taken over the fit (the feed's "training"
  to "evaluating" lines). Then re-attaching: a page watching a long dense run is reloaded 5 times (from the
  reload to the live chart's points drawn again from batch 1), Stop is clicked on the reloaded page, and a
  second run's worker is killed with SIGKILL (until run.json, then the page, says so).
- **Predict in the browser** (`bench_predict_browser.py`, issue 27): the real app in headless Chromium, bundled
  MNIST model, activations view on; strokes drawn with the mouse, alternating round by round between the drawing
  pad (the model in the browser: ONNX Runtime Web in a worker) and the server's canvas (`?predict=server`). Pen
  lift → bars: from the mouseup event's timestamp to the first animation frame whose bars show the drawing as the
  pen left it (the server path: the first frame whose bar values differ). While drawing: the interval between bar
  updates with the pen down, the delay from each pointermove's timestamp to its handler and the frame interval,
  for the pad with live bars, the pad with bars at pen lift only (every other stroke) and the server's canvas.
  The load average is recorded with the figures: the machine may be shared.
- **Pages in the browser** (`bench_pages_browser.py`, issue 26): the real app in headless Chromium, offline, bundled
  MNIST model. Times are taken in the page, from the click event on a sidebar link (a JS click) to the first
  animation frame (requestAnimationFrame polling) that shows the page: the script run ended, no skeleton or stale
  element left, the page's h1 shown. Every page a round, in orders of varying stride so a page's predecessor
  changes; repeat visits (p50 and max per page) apart from the first visit to a page in a session (2 sessions × 4
  rounds; quick 1 × 2), and a session right after the server starts apart. In fresh sessions from Home: Mistakes to
  its first gallery image loaded (`naturalWidth > 0`), the Embedding map to the first frame whose WebGL scatter
  canvas has drawn pixels (5 each; quick 1), and each once right after the server starts. The script run's end and
  the longest gap between frames (the page's thread busy, e.g. loading Plotly's code for a session's first chart)
  tell the server's part from the browser's.
- **Prediction latency** (`bench_predict.py`): `predict_image` (preprocess + model) on 280×280 RGBA
  canvas drawings made with PIL, bundled MNIST model; p50/p95 over all calls after 5 warm-up calls (the
  server's part only: what uploads and `?predict=server` pay before the page redraws).
- **Mistakes page** (`bench_mistakes.py`): test-set predictions + `analysis.summary` + `analysis.mistakes`
  for Fashion-MNIST's 10,000 test images; then the page through Streamlit's AppTest (the entrypoint with
  its navigation), first run then reruns with the predictions cached. AppTest times the server side of
  a rerun (the script and its messages), not the browser's drawing.
- **Inside the model** (`bench_inside.py`): Predict's update with activations (`predict_image`, the
  activation sub-model, one figure per watched layer serialised as `st.plotly_chart` does) on the
  canvas drawings of `bench_predict.py`, bundled MNIST model, p50/p95; the Embedding map page for
  Fashion-MNIST's 10,000 test images through AppTest (first visit from nothing cached, then colour
  changes), and its steps alone (embeddings, PCA, figure, near-duplicates, LOF; t-SNE in full mode).
- **Start-up** (`bench_startup.py`): `streamlit run streamlit_app.py` (headless) to the home page's `h1`
  visible in headless Chromium (`/usr/bin/chromium`); the first start is "cold", the median of the
  others "warm". The browser is started beforehand.
- **Memory** (`bench_memory.py`): VmHWM/VmRSS from `/proc/<pid>/status` of the server process after
  Playwright visits Mistakes on MNIST and then Fashion-MNIST; then, on a fresh server, its VmRSS after
  each of 10 short trainings started one after another from the Train page and watched to their result.
- **Presets** (`bench_presets.py`): every architecture in `core.model.architectures.ARCHITECTURES` trained by
  `train()`; full mode uses the whole training split and the architecture's default epochs, stopped
  after 10 minutes of fitting (the target's budget), quick mode a 3,000-sample subset for 1 epoch.
- **Export** (`bench_export.py`): every format of `core/export/formats.py` exported alone from the bundled
  models (3 rounds; quick: MNIST, 1 round), then all in one call; write time, file size, one-image
  latency in the format's own runtime, top-1 agreement and max |Δp| against Keras on 200 test images.
- **Tuning** (`bench_tuning.py`): learning-rate range tests of `cnn` and `dense` on Fashion-MNIST through the
  engine, timed from submit to the result on disk (worker start included); a 4-run sweep on one worker
  slot, then on two.
- **Own small datasets** (`bench_owndata.py`): generated 3- and 5-class datasets (`core.data.synthetic`:
  shapes on coloured backgrounds, colours, drawn sketches; 60 images a class) imported through
  `core.data.uploads`, trained with `auto` by `train()` in a fresh process each; CPU time is the whole
  process's (TensorFlow import, loading, fit, evaluation, saving).
- **Label search** (`bench_labels.py`): 40 training labels of the offline MNIST subset flipped through
  the fix overlay, then the k-fold pass as the app runs it (k dense fold runs, 3 epochs, through the
  engine's worker processes with its default slots; 5 folds, quick 3) and cleanlab's ranking; wall
  time from submit to the last fold saved, and how many flips rank in the top 100 (target ≥ 30).
- **Few-shot photos** (`bench_fewshot.py`, issue 25): Fashion-MNIST product photos, 40 a class, as 96×96 RGB
  files imported with `python -m core data import`, trained with the default `auto` (which takes the pretrained
  EfficientNet-Lite0 for photo-like data) in a fresh process against an empty feature cache, then once more on
  the same data; accuracy on 1,000 held-out Fashion-MNIST test photos decoded as the app does. Times are of
  `train()` itself, TensorFlow's import apart; the first includes converting the backbone into the cache.
- **Label search on own data** (`bench_own_labels.py`): 2,000 MNIST digits of the offline subset written as
  PNG files into an own dataset (200 a class), 40 labels flipped at random over all its images (train and
  test) as relabel fixes named by file and hash; the search as the app runs it (k fold runs of the dataset's
  default recipe, `auto`, over every image, then the ranking); flips among the top 100 files and the CPU time
  of the whole search, workers included, for seeds 0, 1, 2 (quick: 0). Target ≥ 34 of 40 within 5 CPU-minutes.
- **Streaming big folders** (`bench_streaming.py`): a generated folder of 50,000 120×90 JPEGs (quick:
  3,000, streaming forced) trained with `auto` for 1 epoch through the engine's worker; its VmHWM sampled
  every 0.2 s (target ≤ 1.5 GB), throughput, the first load's decode into the cache file, the cache's
  size, and a later load finding the cache.
"""

ANALYSIS = Path(__file__).with_name("analysis.md")  # written by hand after reading a full run
# In analysis.md a figure is cited as {{bench | metric}}, {{bench | metric | .1f}} (a format) or
# {{bench | metric | spread}} (or status, target): filled from the rows of the run being written, so the
# prose always quotes the run above it.
CITE = re.compile(r"\{\{([^{}|]+)\|([^{}|]+)(?:\|([^{}|]+))?\}\}")


def cite(text: str, rows: list[dict]) -> tuple[str, list[str]]:
    """analysis.md with its {{…}} citations filled from `rows`; the citations no row answers."""
    by_key = {(r["bench"], r["metric"]): r for r in rows}
    missing = []

    def fill(m: re.Match) -> str:
        bench, metric, what = m[1].strip(), m[2].strip(), (m[3] or "").strip()
        r = by_key.get((bench, metric))
        if r is None:
            missing.append(f"{bench} | {metric}")
            return f"**(not in this run: {bench} | {metric})**"
        if what in ("spread", "status", "target"):
            return str(r[what])
        value = r["value"]
        text = format(value, what) if what and isinstance(value, (int, float)) else common.fmt_value(value)
        return text if r["unit"] in ("", "ratio", "×") else f"{text} {r['unit']}"

    return CITE.sub(fill, text), missing


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
              METHOD, "", cite(ANALYSIS.read_text().strip(), rows)[0]]
    return "\n".join(lines) + "\n"


def saved_run(out: Path = DOC) -> tuple[dict, list[dict], str]:
    """The run saved beside `out` (its JSON), its rows in benchmark order, and the Markdown made of them."""
    saved = json.loads(out.with_suffix(".json").read_text())
    done = [n for n in BENCHES if n in saved["results"]]
    rows = [r for n in done for r in saved["results"][n]]
    return saved, rows, markdown(saved["info"], rows, saved["quick"], done, [], saved["took"])


def render(out: Path) -> int:
    """Rewrite the Markdown from the saved JSON (after editing analysis.md), measuring nothing."""
    _, rows, page = saved_run(out)
    out.write_text(page)
    print(f"wrote {out} from {out.with_suffix('.json')}")
    for key in cite(ANALYSIS.read_text(), rows)[1]:
        print(f"analysis.md cites a figure this run does not have: {key}", file=sys.stderr)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, a few minutes in all")
    p.add_argument("--only", nargs="+", choices=BENCHES, help="run only these")
    p.add_argument("--out", default=str(DOC), help=f"the Markdown file to write (default {DOC})")
    p.add_argument("--render", action="store_true", help="only rewrite the Markdown from the saved results")
    args = p.parse_args()
    if args.render:
        return render(Path(args.out))
    names = [n for n in BENCHES if not args.only or n in args.only]
    info = common.machine_info()
    info["load_avg"] = f"{info['load_avg']} (1/5/15 min, at the start)"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results, took, dates = {}, {}, {}
    saved = out.with_suffix(".json")  # every row, so --only can rerun some and keep the others
    if args.only and saved.exists():
        old = json.loads(saved.read_text())
        if old.get("quick") == args.quick:
            results, took = old["results"], old["took"]
            dates = old.get("dates") or dict.fromkeys(results, old.get("date", "an earlier run"))
    for i, name in enumerate(names):
        common.log(f"=== {name} ({i + 1}/{len(names)})")
        dates[name] = time.strftime("%Y-%m-%d %H:%M %Z")
        if args.only:  # a mix of runs: say which figure is from when
            info["note"] = "measured: " + ", ".join(f"{n} {dates[n]}" for n in BENCHES if n in dates)
        results[name], took[name] = run_bench(name, args.quick)
        for r in results[name]:
            r.setdefault("where", WHERE.get(name, "in-process"))
        info["load_avg_end"] = " / ".join(f"{x:.2f}" for x in os.getloadavg()) + " (after the last)"
        done = [n for n in BENCHES if n in results]
        rows = [r for n in done for r in results[n]]
        out.write_text(markdown(info, rows, args.quick, done, names[i + 1:], took))
        saved.write_text(json.dumps({"quick": args.quick, "date": info["date"], "info": info,
                                      "results": results, "took": took, "dates": dates}, indent=1))
    print(common.table_text(rows))
    misses = [r for r in rows if r["status"] in ("MISS", "ERROR")]
    print(f"\n{sum(r['status'] == 'PASS' for r in rows)} PASS, {len(misses)} MISS/ERROR; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
