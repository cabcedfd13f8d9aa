"""The web-page export: a folder that runs the classifier in any browser, opened from file:// or any static host.

index.html (draw, upload, camera -> confidence bars; the model card), the model as ONNX and ONNX Runtime Web,
installed from npm into web/node_modules by run.sh. Chromium refuses fetch() of file:// URLs, so the model and the
runtime's WebAssembly are gzip+base64 strings in classic scripts, handed to the runtime as bytes; the runtime's JS
glue becomes a blob: URL (web/classifier.js). Checked by opening the page in headless Chromium through Playwright.
"""
from __future__ import annotations

import base64
import concurrent.futures
import gzip
import html
import json
import shutil
from pathlib import Path

import numpy as np

from core import LabError, config

WEB = Path(__file__).resolve().parents[2] / "web"  # the page's sources and package.json; node_modules after npm ci
ORT = WEB / "node_modules" / "onnxruntime-web"
RUNTIME = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")  # the CPU build only
SOURCES = ("classifier.js", "page.js")  # copied as they are; index.html is a template
LOAD_SECONDS = 120  # for the page to load its model in Chromium on a busy machine
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]
CARD, SIZE = "<!--card-->", "<!--size-->"  # where add_card puts the model card and the page's size

# In the page: the raw 0-255 inputs as base64 float32 -> probabilities, then `calls` one-image timings (ms)
MEASURE_JS = """async ([b64, n, calls]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const x = new Float32Array(bytes.buffer), one = x.subarray(0, x.length / n);
  const probs = await window.classifier.probabilities(x, n);
  await window.classifier.probabilities(one, 1);  // warm-up
  const times = [];
  for (let i = 0; i < calls; i++) {
    const t = performance.now();
    await window.classifier.probabilities(one, 1);
    times.push(performance.now() - t);
  }
  return {probs: Array.from(probs), times};
}"""


class PageError(LabError, RuntimeError):
    """The page cannot be built or does not work; the message is one line naming the fix."""


def ort_version() -> str:
    return json.loads((ORT / "package.json").read_text())["version"]


def missing() -> str | None:
    """Why the page cannot be built on this machine (ONNX Runtime Web not installed from npm), or None."""
    if all((ORT / "dist" / name).is_file() for name in RUNTIME):
        return None
    how = ("run ./run.sh app once (it runs npm ci in web/)" if shutil.which("npm")
           else "install Node.js and npm (apt-get install npm), then run ./run.sh app once")
    return f"needs ONNX Runtime Web from npm, which is not installed here: {how}"


def chromium() -> Path | None:
    path = config.CHROMIUM.get()
    return path if path.is_file() else None


def unchecked() -> str | None:
    """Why the page cannot be opened on this machine to check it (the check is skipped, not the export), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "not checked here: the playwright package is missing (pip install -r requirements.txt)"
    if chromium() is None:
        return (f"not checked here: no Chromium at {config.CHROMIUM.get()} "
                "(apt-get install chromium, or set CLASSIFIER_LAB_CHROMIUM)")
    return None


def _packed(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, 9, mtime=0)).decode()


def build(folder: Path, onnx: Path, info: dict) -> Path:
    """Write the page into folder (index.html with a place for the card, scripts, model, runtime); the folder."""
    why = missing()
    if why:
        raise PageError(why)
    dist = ORT / "dist"
    shutil.copyfile(dist / "ort.wasm.min.js", folder / "ort.wasm.min.js")
    glue = (dist / "ort-wasm-simd-threaded.mjs").read_text()
    wasm = _packed((dist / "ort-wasm-simd-threaded.wasm").read_bytes())  # 15 MB -> 5 MB as gzip+base64
    (folder / "runtime.js").write_text(f"window.ORT_WASM = {{glue: {json.dumps(glue)}, wasm: \"{wasm}\"}};\n")
    (folder / "model.js").write_text(f"window.CLASSIFIER_MODEL = \"{_packed(onnx.read_bytes())}\";\n")
    for name in SOURCES:
        shutil.copyfile(WEB / name, folder / name)
    shape = list(info["input_shape"])
    colour = len(shape) == 3 and shape[2] == 3
    meta = {"classes": list(info["class_names"]), "input_shape": shape, "ink_box": info["ink_box"]}
    fields = {  # drawing is for grayscale models, as on the Predict page; colour ones start on Upload
        "title": html.escape(f"{info['dataset_title']} classifier"), "ort_version": ort_version(),
        "meta": json.dumps(meta).replace("</", "<\\/"), "card": CARD, "size": SIZE,
        "draw_selected": str(not colour).lower(), "upload_selected": str(colour).lower(),
        "draw_hidden": "hidden" if colour else "", "upload_hidden": "" if colour else "hidden"}
    page = (WEB / "index.html").read_text()
    for key, value in fields.items():
        page = page.replace("{{" + key + "}}", value)
    (folder / "index.html").write_text(page)
    return folder


def size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def add_card(folder: Path, card: str) -> None:
    """Show the model card (Markdown) on the page, and the page's own size in its footer."""
    from markdown_it import MarkdownIt

    page = (folder / "index.html").read_text()
    page = page.replace(CARD, MarkdownIt("commonmark", {"html": False}).enable("table").render(card))
    rest = size(folder) - (folder / "index.html").stat().st_size
    text = ""
    for _ in range(2):  # the size counts index.html itself, size line included
        text = f"{(rest + len(page.replace(SIZE, text).encode())) / 1e6:.1f} MB"
    (folder / "index.html").write_text(page.replace(SIZE, text))


def measure(folder: Path, x: np.ndarray, calls: int) -> tuple[np.ndarray, list[float]]:
    """Open the page from file:// in headless Chromium; its probabilities for x, and `calls` one-image times (s)."""
    # in a thread of its own: Playwright's sync API refuses a thread that runs an asyncio loop (a Jupyter notebook,
    # an async server, another sync Playwright session)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="webpage-check") as pool:
        return pool.submit(_measure, folder, x, calls).result()


def _measure(folder: Path, x: np.ndarray, calls: int) -> tuple[np.ndarray, list[float]]:
    from playwright.sync_api import Error, sync_playwright

    data = base64.b64encode(np.ascontiguousarray(x, np.float32).tobytes()).decode()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium()), args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            errors, remote = [], []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: remote.append(r.url) if not r.url.startswith(("file:", "blob:", "data:"))
                    else None)
            page.goto((folder / "index.html").as_uri())
            try:
                page.wait_for_function("document.body.dataset.ready", timeout=LOAD_SECONDS * 1000)
            except Error:
                raise PageError(f"the page did not load its model within {LOAD_SECONDS} s in Chromium") from None
            if page.evaluate("document.body.dataset.ready") != "true" or errors:
                status = page.locator("#status").text_content() or ""
                raise PageError(f"the page fails in Chromium: {errors[0] if errors else status}")
            out = page.evaluate(MEASURE_JS, [data, len(x), calls])
            if remote:  # it must work offline, from the folder alone
                raise PageError(f"the page asked the network for {remote[0]}")
        finally:
            browser.close()
    return np.asarray(out["probs"], np.float32).reshape(len(x), -1), [t / 1000 for t in out["times"]]
