"""Model export: time, size, per-image latency and agreement with Keras for every format in
core/export/formats.py, on the bundled models. Each format is exported alone (as one click on the Runs page
does), `rounds` times; then all formats in one call (as `python -m core export` does).

    python bench/bench_export.py [--quick]
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import common

# the checks tests/export/test_exporter.py holds, as targets here too: (format, metric) -> (bound, text)
TARGETS = {("tflite", "top1_agreement"): (1.0, "= 100 %"), ("tflite-int8", "top1_agreement"): (0.99, "≥ 99 %"),
           ("onnx", "top1_agreement"): (1.0, "= 100 %"), ("tflite", "max_abs_dprob"): (1e-4, "≤ 1e-4")}


def _rows(model: str, name: str, results: list[dict]) -> list[dict]:
    ok = [r for r in results if r["ok"]]
    if not ok:
        return [common.row("export", f"{model} {name}", float("nan"), notes=results[0].get("error", "failed"))]
    rows, secs = [], [r["export_seconds"] for r in ok]
    lat = [r["latency_ms"] for r in ok]
    rows.append(common.row("export", f"{model} {name}: write", common.median(secs), "s",
                           spread=common.spread(secs, "{:.2f}"), notes=f"{len(ok)} rounds, alone"))
    rows.append(common.row("export", f"{model} {name}: file size", ok[0]["bytes"] / 1e6, "MB",
                           notes=f"zip {ok[0]['zip_bytes'] / 1e6:.2f} MB"))
    rows.append(common.row("export", f"{model} {name}: one image", common.median(lat), "ms",
                           spread=common.spread(lat, "{:.2f}"), notes="batch of 1, its own runtime"))
    for metric, unit in (("top1_agreement", "%"), ("max_abs_dprob", "")):
        value = ok[0][metric]
        bound, text = TARGETS.get((name, metric), (None, ""))
        good = None if bound is None else (value >= bound if metric == "top1_agreement" else value <= bound)
        shown = value * 100 if unit == "%" else f"{value:.1e}"  # |Δp| spans 0 to 1e-2: keep its exponent
        rows.append(common.row("export", f"{model} {name}: {metric.replace('_', ' ')}", shown, unit,
                               target=text, ok=good,
                               notes=f"{ok[0]['n']} test images"))
    return rows


def run(quick: bool) -> list[dict]:
    from core.export import exporter, formats

    from core.model import compat
    rounds, models = (1, ["mnist"]) if quick else (3, ["mnist", "fashion_mnist"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        runs_dir = Path(tmp) / "runs"
        for model_name in models:
            run_ = common.bundled_run(model_name)
            model = compat.load_model(run_.model_path)
            for name in formats.FORMATS:
                results = []
                for i in range(rounds):
                    r = exporter.export(run_, [name], Path(tmp) / f"{model_name}-{name}-{i}", runs_dir, model=model)[0]
                    common.log(f"export {model_name} {name} round {i + 1}/{rounds}: "
                               + (f"{r['export_seconds']:.2f} s, {r['bytes'] / 1e6:.2f} MB, {r['latency_ms']:.2f} ms, "
                                  f"agreement {r['top1_agreement']:.2%}" if r["ok"] else r["error"]))
                    results.append(r)
                rows += _rows(model_name, name, results)
            t0 = time.perf_counter()
            everything = exporter.export(run_, "all", Path(tmp) / f"{model_name}-all", runs_dir, model=model)
            took = time.perf_counter() - t0
            rows.append(common.row("export", f"{model_name}: all formats in one call", took, "s",
                                   notes=f"{sum(r['ok'] for r in everything)}/{len(everything)} ok, "
                                   "with loading the test set and every check"))
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run))
