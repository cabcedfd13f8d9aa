/* The Predict page's drawing pad, its second thread: loads the model into ONNX Runtime Web (web/classifier.js) and
 * classifies the drawings web/pad.js posts, so the pen never waits for the model. A classic worker script: it
 * runs beside the files it imports, served with the pad by Streamlit (ui/predict_pad.py).
 *
 *   in:  {type: "load", model: url, meta, runtime: version}
 *                                            out: {type: "loaded", model, ms} | {type: "failed", model, message}
 *   in:  {type: "classify", version, bitmap}  out: {type: "result", model, version, probs, input, ms}
 *                                                   | {type: "blank", model, version, message}
 * meta as web/classifier.js takes it; background 0 for own datasets, whose drawings the app stores on black.
 */
importScripts("ort.wasm.min.js", "classifier.js");

const CACHE = "classifier-lab-pad-";  // + the runtime's version: where the browser keeps ONNX Runtime Web
let clf = null, model = null, surface = null;

function pixels(bitmap) {
  // the canvas's RGBA, as getImageData gives it in the page
  if (!surface || surface.canvas.width !== bitmap.width || surface.canvas.height !== bitmap.height) {
    surface = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d", {willReadFrequently: true});
  }
  surface.clearRect(0, 0, bitmap.width, bitmap.height);
  surface.drawImage(bitmap, 0, 0);
  bitmap.close();
  return surface.getImageData(0, 0, surface.canvas.width, surface.canvas.height);
}

async function fetched(url, store) {
  // the runtime from the browser's Cache Storage once fetched (Streamlit sends no validators, so the HTTP cache
  // fetches 15 MB again on every visit); Cache Storage exists on https and localhost only: elsewhere, the server
  const hit = store && await store.match(url);
  const r = hit || await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  if (store && !hit) await store.put(url, r.clone()).catch(() => null);  // full, or private browsing: no matter
  return r;
}

async function runtimeStore(version) {
  // one cache per runtime version (the served folder's name); older versions' are deleted
  if (!self.caches) return null;
  try {
    for (const name of await caches.keys()) if (name.startsWith(CACHE) && name !== CACHE + version) caches.delete(name);
    return await caches.open(CACHE + version);
  } catch (e) {
    return null;
  }
}

async function load({model, meta, runtime}) {
  const t = performance.now(), store = await runtimeStore(runtime);
  // the wasm as bytes and its glue as text: nothing depends on how the server labels .wasm and .mjs files
  const [wasm, glue, onnx] = await Promise.all([
    fetched("ort-wasm-simd-threaded.wasm", store).then(r => r.arrayBuffer()).then(b => new Uint8Array(b)),
    fetched("ort-wasm-simd-threaded.mjs", store).then(r => r.text()),
    fetched(model, null).then(r => r.arrayBuffer()).then(b => new Uint8Array(b))]);
  clf = await ClassifierLab.load({model: onnx, wasm, glue, meta});
  return performance.now() - t;
}

async function handle(data) {
  if (data.type === "load") {
    try {
      const ms = await load(data);
      model = data.model;
      postMessage({type: "loaded", model, ms});
    } catch (e) {
      postMessage({type: "failed", model: data.model, message: String(e && e.message || e)});
    }
    return;
  }
  const {version} = data, t = performance.now(), by = model;
  try {
    const image = pixels(data.bitmap);
    const out = await clf.classify(image);
    postMessage({type: "result", model: by, version, probs: out.probs, input: out.input, ms: performance.now() - t});
  } catch (e) {
    if (e instanceof ClassifierLab.BlankImage) postMessage({type: "blank", model: by, version, message: e.message});
    else postMessage({type: "failed", model: by, message: String(e && e.message || e)});
  }
}

let queue = Promise.resolve();
self.onmessage = ({data}) => { queue = queue.then(() => handle(data)); };  // one at a time, in order: one session
