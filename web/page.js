/* The shared page's controls: draw, upload or camera -> ClassifierLab -> confidence bars. Needs classifier.js,
 * ort.wasm.min.js, runtime.js (ORT_WASM), model.js (CLASSIFIER_MODEL) and the page's #meta JSON. */
(function () {
  "use strict";
  const $ = id => document.getElementById(id);
  const meta = JSON.parse($("meta").textContent);
  const status = $("status");
  const drawing = !$("tab-draw").hidden;  // grayscale models; colour ones take photos
  let clf = null, busy = false, again = null;

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  function showInput(input) {
    // what the model sees, 6x, pixelated
    const [h, w] = meta.input_shape, colour = meta.input_shape.length === 3 && meta.input_shape[2] === 3;
    const c = $("seen"), ctx = c.getContext("2d"), img = ctx.createImageData(w, h);
    c.width = w; c.height = h;
    for (let i = 0; i < w * h; i++) {
      for (let k = 0; k < 3; k++) img.data[i * 4 + k] = colour ? input[i * 3 + k] : input[i];
      img.data[i * 4 + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function showBars(probs) {
    const lines = fillBars(probs);  // the rows the pad draws too (ClassifierLab.bars, made at start)
    $("top").textContent = lines.top;
    $("next").textContent = lines.next;
    $("result").hidden = false;
  }

  async function classify(pixels) {
    // at most one prediction at a time; the newest picture waiting is done next, older ones are dropped
    if (!clf) return;
    if (busy) { again = pixels; return; }
    busy = true;
    try {
      const t = performance.now();
      const out = await clf.classify(pixels);
      showInput(out.input);
      showBars(out.probs);
      say(`Predicted in ${(performance.now() - t).toFixed(0)} ms, in this browser.`, "ok");
    } catch (e) {
      if (e instanceof ClassifierLab.BlankImage) { $("result").hidden = true; say(e.message, "hint"); }
      else say(`Cannot classify this picture: ${e.message}`, "error");
    } finally {
      busy = false;
      if (again) { const next = again; again = null; classify(next); }
    }
  }

  function pixelsOf(source, width, height) {
    const c = document.createElement("canvas");
    c.width = width; c.height = height;
    const ctx = c.getContext("2d", {willReadFrequently: true});
    ctx.drawImage(source, 0, 0, width, height);
    return ctx.getImageData(0, 0, width, height);
  }

  // --- draw: white ink on a transparent canvas (black behind it), as the app's canvas -----------------
  const pad = $("pad"), pen = pad.getContext("2d", {willReadFrequently: true});
  let last = null, pending = false;
  const drawnPixels = () => pen.getImageData(0, 0, pad.width, pad.height);
  function at(e) {
    const r = pad.getBoundingClientRect();
    return [(e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height];
  }
  function stroke(to) {
    pen.strokeStyle = pen.fillStyle = "#ffffff";
    pen.lineWidth = Number($("width").value);
    pen.lineCap = pen.lineJoin = "round";
    pen.beginPath();
    pen.moveTo(...(last || to));
    pen.lineTo(...to);
    pen.stroke();
    last = to;
  }
  pad.addEventListener("pointerdown", e => { pad.setPointerCapture(e.pointerId); last = null; stroke(at(e)); });
  pad.addEventListener("pointermove", e => {
    if (!last) return;
    stroke(at(e));
    if (!pending) {  // predictions follow the stroke, one per animation frame at most
      pending = true;
      requestAnimationFrame(() => { pending = false; classify(drawnPixels()); });
    }
  });
  const lift = () => { if (last) { last = null; classify(drawnPixels()); } };
  pad.addEventListener("pointerup", lift);
  pad.addEventListener("pointercancel", lift);
  $("clear").addEventListener("click", () => {
    pen.clearRect(0, 0, pad.width, pad.height);
    $("result").hidden = true;
    say("Draw on the black square.");
  });

  // --- upload --------------------------------------------------------------------------------------------
  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    $("result").hidden = true;  // no bars of the last picture beside this one
    if (!file) return;
    try {
      const bitmap = await createImageBitmap(file);  // upright (EXIF orientation applied)
      const pixels = pixelsOf(bitmap, bitmap.width, bitmap.height);
      const preview = $("preview");
      preview.width = bitmap.width; preview.height = bitmap.height;
      preview.style.imageRendering = bitmap.width < 200 ? "pixelated" : "auto";  // small digits stay sharp
      preview.getContext("2d").drawImage(bitmap, 0, 0);
      preview.hidden = false;
      bitmap.close();
      await classify(pixels);
    } catch (e) {
      say(`${file.name}: not an image this browser can read (png, jpg, webp, gif, bmp).`, "error");
    }
  });

  // --- camera --------------------------------------------------------------------------------------------
  let stream = null;
  $("start").addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 480}, audio: false});
      $("video").srcObject = stream;
      await $("video").play();
      $("snap").disabled = false;
      say("Hold the object in front of the camera and take a photo.");
    } catch (e) {
      say(`No camera: ${e.message}. Allow the camera for this page, or upload a photo instead.`, "error");
    }
  });
  $("snap").addEventListener("click", () => {
    const v = $("video");
    $("result").hidden = true;
    if (v.videoWidth) classify(pixelsOf(v, v.videoWidth, v.videoHeight));
  });

  // --- tabs ----------------------------------------------------------------------------------------------
  document.querySelectorAll("[role=tab]").forEach(tab => tab.addEventListener("click", () => {
    document.querySelectorAll("[role=tab]").forEach(t => t.setAttribute("aria-selected", String(t === tab)));
    const panel = tab.getAttribute("aria-controls");
    document.querySelectorAll("[role=tabpanel]").forEach(p => { p.hidden = p.id !== panel; });
    $("result").hidden = true;
    if (tab.id !== "tab-camera" && stream) {  // leaving the camera turns it off
      stream.getTracks().forEach(t => t.stop());
      stream = null;
      $("snap").disabled = true;
    }
  }));

  // --- start ---------------------------------------------------------------------------------------------
  const fillBars = ClassifierLab.bars($("bars"), meta.classes);
  say("Loading the model…");
  const t0 = performance.now();
  ClassifierLab.load({model: window.CLASSIFIER_MODEL, wasm: window.ORT_WASM.wasm, glue: window.ORT_WASM.glue, meta})
    .then(c => {
      clf = window.classifier = c;
      document.body.dataset.ready = "true";
      say(`Model loaded in ${(performance.now() - t0).toFixed(0)} ms. ` +
          (drawing ? "Draw on the black square." : "Upload a photo, or take one with the camera."));
    })
    .catch(e => {
      document.body.dataset.ready = "failed";
      say(`The model could not be loaded: ${e.message}`, "error");
    });
})();
