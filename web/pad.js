/* The Predict page's drawing pad (web/pad.html), in the page's thread: the pen, the bars, and Streamlit's component
 * messages (postMessage, API version 1). The model runs in web/pad_worker.js, so drawing never waits for it: one
 * drawing at a time, the newest next, at most one every GAP_MS while the pen moves.
 *
 * From the server (args): {model: url of the ONNX file, meta: {classes, input_shape, ink_box, background}, hint,
 * runtime: the version of the served runtime}.
 * To the server, once the bars show the drawing as the pen left it: {model, version, input: base64 of the model
 * input's bytes, probs}; null for an empty pad; {model, error} when this browser cannot run the model.
 * For tests and benchmarks, <body> says data-ready, data-drawn (ink changes so far), data-shown (the change whose
 * prediction the bars show) and data-ms (how long the worker took for it); window.padGapMs overrides GAP_MS
 * (Infinity: bars at pen lift only, what bench/bench_predict_browser.py compares with).
 */
(function () {
  "use strict";
  const $ = id => document.getElementById(id);
  const GAP_MS = 30;  // bars at most ~30 times a second while the pen moves: the worker leaves the CPU some rest
  const QUIET_MS = 250;  // the pen stays up this long before the server hears of the drawing
  const body = document.body, pad = $("pad"), pen = pad.getContext("2d", {willReadFrequently: true});
  const worker = new Worker("pad_worker.js");
  let args = null, model = null, ready = false, fill = null;  // fill(probs): the bars (ClassifierLab.bars)
  let down = false, last = null;  // the pen, and the last point of its stroke
  let drawn = 0, shown = 0, busy = false, lastResult = null, reported = null, asked = -Infinity, timer = null;
  let quiet = null;  // the pending report of a pen lift

  const post = (type, extra) => window.parent.postMessage({isStreamlitMessage: true, type, ...extra}, "*");
  const report = value => post("streamlit:setComponentValue", {value, dataType: "json"});

  function base64(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i += 8192) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
    return btoa(text);
  }

  function say(text) { $("status").textContent = text; }

  function hint(text, error) {
    $("hint").textContent = text;
    $("hint").hidden = false;
    $("result").hidden = true;
    body.classList.toggle("error", Boolean(error));
  }

  function showBars(probs) {
    // as the server's charts.confidence_bars: every class, the top one red; "top · p" and the next two above
    const lines = fill(probs);
    $("top").textContent = lines.top;
    $("next").textContent = lines.next;
    $("hint").hidden = true;
    $("result").hidden = false;
    body.classList.remove("error");
  }

  // --- the model, in the worker --------------------------------------------------------------------------------

  function ask() {
    // the drawing as it is now, unless the worker is busy (then the newest goes when it is done) or it is shown;
    // while the pen moves, one every GAP_MS at most
    if (!ready || busy || shown === drawn) return;
    const wait = down ? asked + (window.padGapMs ?? GAP_MS) - performance.now() : 0;
    if (wait > 0) {
      if (!timer && Number.isFinite(wait)) timer = setTimeout(() => { timer = null; ask(); }, wait);
      return;
    }
    busy = true;
    asked = performance.now();
    // a snapshot of the canvas, read out in the worker: this thread copies no pixels (and makes no garbage)
    const version = drawn;
    createImageBitmap(pad).then(bitmap => worker.postMessage({type: "classify", version, bitmap}, [bitmap]));
  }

  function lifted(result, now) {
    // the drawing as the pen left it, once: its model input to the server (activations, adding it to the data),
    // QUIET_MS after the pen lifts unless it goes down again: a digit of two strokes costs the server one rerun,
    // and the page does not redraw the activations under a stroke that follows at once
    clearTimeout(quiet);
    const value = result.type === "result"
      ? {model, version: result.version, input: base64(result.input), probs: Array.from(result.probs)} : null;
    const key = value ? `${model} ${result.version}` : "empty";
    if (key === reported) return;
    const send = () => { reported = key; report(value); };
    if (now) send(); else quiet = setTimeout(send, QUIET_MS);
  }

  worker.onmessage = ({data}) => {
    if (data.model !== model) {  // an answer from the model used before this one
      if (data.type !== "loaded") busy = false;
      return;
    }
    if (data.type === "loaded") {
      ready = true;
      body.dataset.ready = "true";
      say(`Model loaded into this browser in ${data.ms.toFixed(0)} ms. Draw one character; the bars follow the pen.`);
      if (drawn > 0) { shown = -1; ask(); }  // a drawing made before (another model): classify it with this one
      return;
    }
    if (data.type === "failed") {
      body.dataset.ready = ready ? "true" : "failed";
      busy = false;
      hint(`This browser cannot run the model: ${data.message}`, true);
      clearTimeout(quiet);
      report({model, error: data.message});
      return;
    }
    busy = false;
    if (data.version >= shown) {
      shown = data.version;
      body.dataset.shown = String(shown);
      body.dataset.ms = data.ms ? data.ms.toFixed(1) : "";
      lastResult = data;
      if (data.type === "result") {
        showBars(data.probs);
        say(`Predicted in this browser in ${data.ms.toFixed(0)} ms.`);
      } else if (!down) {  // too little ink yet: said at pen lift, not flashed while a stroke begins
        hint(data.message);
      }
    }
    if (shown !== drawn) ask();  // the pen moved meanwhile
    else if (!down) lifted(data);
  };

  // --- the pen: white ink on a transparent canvas over black, as streamlit-drawable-canvas drew it ----------------

  function at(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  }

  function stroke(to) {
    ClassifierLab.ink(pen, last, to, Number($("width").value));
    last = to;
    drawn += 1;
    body.dataset.drawn = String(drawn);
    ask();
  }

  function lift() {
    if (!down) return;
    down = false;
    last = null;
    if (shown === drawn && !busy && lastResult) lifted(lastResult);
    else ask();
  }

  pad.addEventListener("pointerdown", e => {
    if (e.button !== 0) return;
    pad.setPointerCapture(e.pointerId);
    clearTimeout(quiet);  // more ink is coming: the server hears of the drawing when this stroke is done
    down = true;
    stroke(at(e));
  });
  pad.addEventListener("pointermove", e => { if (down) stroke(at(e)); });
  pad.addEventListener("pointerup", lift);
  pad.addEventListener("pointercancel", lift);
  $("width").addEventListener("input", () => { $("width-value").textContent = $("width").value; });
  $("clear").addEventListener("click", () => {
    pen.clearRect(0, 0, pad.width, pad.height);
    drawn += 1;
    shown = drawn;  // nothing to predict: the hint is what an empty pad shows
    body.dataset.drawn = body.dataset.shown = String(drawn);
    lastResult = null;
    hint(args ? args.hint : "");
    lifted({type: "blank"}, true);
  });

  // --- Streamlit ----------------------------------------------------------------------------------------------------

  function theme(t) {
    if (!t) return;
    if (t.textColor) document.documentElement.style.setProperty("--ink", t.textColor);
    body.style.fontFamily = t.font || "";
    document.documentElement.style.colorScheme = t.base === "dark" ? "dark" : "light";
  }

  window.addEventListener("message", ({data}) => {
    if (!data || data.type !== "streamlit:render") return;
    theme(data.theme);
    const before = args;
    args = data.args;
    if (!before || before.meta.classes.join("\n") !== args.meta.classes.join("\n")) {
      fill = ClassifierLab.bars($("bars"), args.meta.classes);
    }
    if (!lastResult && shown === drawn) hint(args.hint);
    if (args.model !== model) {  // the first model, or the sidebar picked another one
      model = args.model;
      ready = false;
      body.dataset.ready = "loading";
      say("Loading the model into this browser…");
      worker.postMessage({type: "load", model, meta: args.meta, runtime: args.runtime});
    }
  });

  new ResizeObserver(() => post("streamlit:setFrameHeight", {height: Math.ceil(body.getBoundingClientRect().height)}))
    .observe(body);
  post("streamlit:componentReady", {apiVersion: 1});
})();
