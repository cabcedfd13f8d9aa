/* Classifier Lab in the browser: a model exported to ONNX, run by ONNX Runtime Web (WebAssembly, one thread),
 * with the app's own preprocessing (core/analysis/inference.py) ported line by line, so a picture gives the model
 * the same input here as in the app. One classic script, no imports: it works from file:// and any static host.
 * Used by the web-page export (core/export/webpage.py) and the Predict page's drawing pad (web/pad_worker.js); meant
 * for any page that runs a model in the browser.
 *
 *   const clf = await ClassifierLab.load({model, wasm, glue, meta});   // bytes or gzip+base64 strings
 *   const out = await clf.classify(imageData);   // {input, probs, top}; throws ClassifierLab.BlankImage
 *   const probs = await clf.probabilities(batch, n);   // raw 0-255 float32 inputs, n images -> n x C
 *
 * meta: {classes: [...], input_shape: [h, w] or [h, w, 3], ink_box: 20 | null, background: 0 | null (optional: put
 * the picture on this plain grey level first, as the app does with own datasets' drawings)}. ImageData-like inputs are
 * {data: RGBA bytes, width, height} (a canvas's getImageData); preprocess() needs no DOM, nor the runtime.
 * ink(context2d, from, to, width): a stroke's segment as the app draws it; bars(element, classes) -> show(probs):
 * confidence bars in a page.
 * Without `wasm`/`glue`, ONNX Runtime Web looks for its own files beside ort.wasm.min.js, its default.
 */
(function (root) {
  "use strict";

  const f32 = Math.fround;
  const MIN_INK = 24.0, MASK_FRACTION = 0.2, TRIM_FRACTION = 0.002, MIN_EXTENT = 0.04;
  const WORK_SIDE = 1024, STAT_SAMPLES = 40000, FLAT_RANGE = 12;
  const DRAW_HINT = "Nothing drawn yet — draw a digit large, in one colour, on a plain background.";
  const PHOTO_HINT = "The image is a single flat colour — upload a photo that shows the object.";

  class BlankImage extends Error {
    constructor(message) { super(message); this.name = "BlankImage"; }
  }

  // --- small numpy equivalents (float32 where numpy works in float32) -------------------------------------

  function select(a, k) {
    // rearrange a so that a[k] is its k-th smallest value, smaller ones before it (Hoare's quickselect)
    let lo = 0, hi = a.length - 1;
    while (lo < hi) {
      const pivot = a[(lo + hi) >> 1];
      let i = lo, j = hi;
      while (i <= j) {
        while (a[i] < pivot) i++;
        while (a[j] > pivot) j--;
        if (i <= j) { const t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
      }
      if (k <= j) hi = j; else if (k >= i) lo = i; else break;
    }
    return a[k];
  }

  function median(values, float32) {
    // np.median: the middle value, or the mean of the two middle ones (computed in the array's dtype)
    const a = float32 ? Float32Array.from(values) : Float64Array.from(values);
    const n = a.length, m = n >> 1, upper = select(a, m);
    if (n % 2) return upper;
    let lower = -Infinity;  // the largest of the values before the m-th
    for (let i = 0; i < m; i++) if (a[i] > lower) lower = a[i];
    return float32 ? f32(f32(lower + upper) / 2) : (lower + upper) / 2;
  }

  function where(values, mask, want) {  // values[mask == want], as a typed array of the same kind
    let n = 0;
    for (let i = 0; i < mask.length; i++) n += mask[i] === want;
    const out = new values.constructor(n);
    for (let i = 0, j = 0; i < mask.length; i++) if (mask[i] === want) out[j++] = values[i];
    return out;
  }

  function roundHalfEven(x) {  // Python's round()
    const r = Math.round(x);
    return (Math.abs(x % 1) === 0.5 && r % 2 !== 0) ? r - 1 : r;
  }

  function pairwiseSum(a, start, n, round) {
    // numpy's add.reduce along a contiguous axis, in float32 (round = Math.fround) or float64 (round = Number):
    // one running sum below 8 values, 8 accumulators up to 128, halves above
    if (n < 8) {
      let s = 0;
      for (let i = 0; i < n; i++) s = round(s + a[start + i]);
      return s;
    }
    if (n <= 128) {
      const r = Array.from({length: 8}, (_, j) => a[start + j]);
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = round(r[j] + a[start + i + j]);
      let s = round(round(round(r[0] + r[1]) + round(r[2] + r[3])) + round(round(r[4] + r[5]) + round(r[6] + r[7])));
      for (; i < n; i++) s = round(s + a[start + i]);
      return s;
    }
    let n2 = n >> 1;
    n2 -= n2 % 8;
    return round(pairwiseSum(a, start, n2, round) + pairwiseSum(a, start + n2, n - n2, round));
  }

  // A 2-D float32 plane: {h, w, d: Float32Array}
  const plane = (h, w, d) => ({h, w, d: d || new Float32Array(h * w)});

  function strided(p) {
    const step = Math.max(1, Math.trunc(Math.sqrt(p.h * p.w / STAT_SAMPLES)));
    const h = Math.ceil(p.h / step), w = Math.ceil(p.w / step), out = plane(h, w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.d[y * w + x] = p.d[y * step * p.w + x * step];
    return {plane: out, step};
  }

  function borderIndex(h, w) {
    // the outer band's pixel indices, in _border's order: top rows, bottom rows, then left and right columns
    const k = Math.max(1, Math.floor(Math.min(h, w) / 16));
    const idx = new Int32Array(2 * k * w + 2 * k * (h - 2 * k));
    let j = 0;
    for (let y = 0; y < k; y++) for (let x = 0; x < w; x++) idx[j++] = y * w + x;
    for (let y = h - k; y < h; y++) for (let x = 0; x < w; x++) idx[j++] = y * w + x;
    for (let y = k; y < h - k; y++) for (let x = 0; x < k; x++) idx[j++] = y * w + x;
    for (let y = k; y < h - k; y++) for (let x = w - k; x < w; x++) idx[j++] = y * w + x;
    return idx;
  }

  function take(d, idx) {
    const out = new Float32Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = d[idx[i]];
    return out;
  }

  function otsu(v) {
    const hist = new Float64Array(256);
    for (let i = 0; i < v.length; i++) hist[Math.trunc(Math.min(Math.max(v[i], 0), 255))] += 1;
    const w0 = new Float64Array(256), m0 = new Float64Array(256);
    let a = 0, b = 0;
    for (let i = 0; i < 256; i++) { a += hist[i]; b += hist[i] * i; w0[i] = a; m0[i] = b; }
    const W = w0[255], M = m0[255];
    let best = -Infinity, arg = 0;
    for (let i = 0; i < 256; i++) {
      const w1 = W - w0[i], ok = w0[i] > 0 && w1 > 0;
      const d = M * w0[i] - m0[i] * W;
      const between = ok ? (d * d) / (w0[i] * w1) : -1.0;
      if (between > best) { best = between; arg = i; }
    }
    return arg + 0.5;
  }

  function spread(v, float32) {  // robust standard deviation (scaled median absolute deviation)
    const m = median(v, float32), dev = new v.constructor(v.length);
    for (let i = 0; i < v.length; i++) dev[i] = float32 ? Math.abs(f32(v[i] - m)) : Math.abs(v[i] - m);
    return 1.4826 * median(dev, float32);
  }

  function corner(s, y0, x0, k) {
    const out = new Float32Array(k * k);
    for (let y = 0; y < k; y++) for (let x = 0; x < k; x++) out[y * k + x] = s.d[(y0 + y) * s.w + x0 + x];
    return out;
  }

  function paperOf(s, band) {
    // whether the background is light, and which band pixels are background (inference._paper)
    const whole = {light: median(band, true) > 127.5, paper: null};
    const t = otsu(s.d), high = new Uint8Array(band.length);
    let nHigh = 0;
    for (let i = 0; i < band.length; i++) { high[i] = band[i] > t ? 1 : 0; nHigh += high[i]; }
    if (nHigh === band.length || nHigh === 0) return whole;
    const k = Math.max(1, Math.floor(Math.min(s.h, s.w) / 8));
    const corners = [[0, 0], [0, s.w - k], [s.h - k, 0], [s.h - k, s.w - k]]
      .filter(([y, x]) => median(corner(s, y, x, k), true) > t).length;
    const light = corners !== 2 ? corners >= 3 : nHigh / band.length > 0.5;
    const paper = light ? high : high.map(h => 1 - h);
    const inPaper = where(band, paper, 1), inInk = where(band, paper, 0);
    if (Math.abs(f32(median(inInk, true) - median(inPaper, true))) <= 3.0 * spread(inPaper, true)) return whole;
    return {light, paper};
  }

  function solve3(a, b) {  // Gaussian elimination with partial pivoting (np.linalg.solve for 3x3)
    const m = a.map((row, i) => [...row, b[i]]);
    for (let c = 0; c < 3; c++) {
      let p = c;
      for (let r = c + 1; r < 3; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
      [m[c], m[p]] = [m[p], m[c]];
      for (let r = c + 1; r < 3; r++) {
        const f = m[r][c] / m[c][c];
        for (let j = c; j < 4; j++) m[r][j] -= f * m[c][j];
      }
    }
    const x = [0, 0, 0];
    for (let r = 2; r >= 0; r--) {
      let s = m[r][3];
      for (let j = r + 1; j < 3; j++) s -= m[r][j] * x[j];
      x[r] = s / m[r][r];
    }
    return x;
  }

  function floorOf(gray) {
    // whether to flip, and the per-pixel level at or below which the flipped image is paper (inference._floor)
    const {plane: s, step} = strided(gray);
    const all = borderIndex(s.h, s.w);
    const {light, paper} = paperOf(s, take(s.d, all));
    const idx = paper ? where(all, paper, 1) : all;
    const v = take(s.d, idx);
    if (light) for (let i = 0; i < v.length; i++) v[i] = f32(255.0 - v[i]);
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < v.length; i++) { lo = Math.min(lo, v[i]); hi = Math.max(hi, v[i]); }
    if (hi - lo === 0) return {light, plane: [v[0], 0, 0], min: v[0]};
    // the paper as a plane fitted to the band's background pixels, refitted without what the first fit left far above
    const n = v.length, ys = new Float64Array(n), xs = new Float64Array(n);
    for (let i = 0; i < n; i++) { ys[i] = Math.floor(idx[i] / s.w) * step; xs[i] = (idx[i] % s.w) * step; }
    let fit = new Uint8Array(n).fill(1), coef = [0, 0, 0], sigma = 0;
    const resid = new Float64Array(n);
    for (let round = 0; round < 2; round++) {
      let s00 = 0, s01 = 0, s02 = 0, s11 = 0, s12 = 0, s22 = 0, b0 = 0, b1 = 0, b2 = 0;
      for (let i = 0; i < n; i++) {
        if (!fit[i]) continue;
        const y = ys[i], x = xs[i];
        s00 += 1; s01 += y; s02 += x; s11 += y * y; s12 += y * x; s22 += x * x;
        b0 += v[i]; b1 += y * v[i]; b2 += x * v[i];
      }
      coef = solve3([[s00 + 1e-6, s01, s02], [s01, s11 + 1e-6, s12], [s02, s12, s22 + 1e-6]], [b0, b1, b2]);
      for (let i = 0; i < n; i++) resid[i] = v[i] - (coef[0] + ys[i] * coef[1] + xs[i] * coef[2]);
      const kept = where(resid, fit, 1);
      sigma = spread(kept, false);
      const mid = median(kept, false);
      for (let i = 0; i < n; i++) fit[i] = resid[i] - mid <= 2.5 * sigma + 1e-6 ? 1 : 0;
    }
    const A = f32(coef[0] + 3.0 * sigma), B = f32(coef[1]), C = f32(coef[2]);
    let min = Infinity;  // a plane, rounded monotonically: its lowest point is a corner
    for (const y of [0, gray.h - 1]) {
      for (const x of [0, gray.w - 1]) min = Math.min(min, f32(f32(A + f32(B * y)) + f32(C * x)));
    }
    return {light, plane: [A, B, C], min};
  }

  // --- Pillow's resampling (Resample.c), reduce (Reduce.c) and alpha composite, for bit-equal results ------

  const FILTERS = {
    box: {support: 0.5, f: x => (x > -0.5 && x <= 0.5) ? 1.0 : 0.0},
    bilinear: {support: 1.0, f: x => { x = Math.abs(x); return x < 1.0 ? 1.0 - x : 0.0; }},
  };

  function coeffs(inSize, outSize, filter) {
    const scale = inSize / outSize, filterscale = Math.max(scale, 1.0);
    const support = filter.support * filterscale, ksize = Math.ceil(support) * 2 + 1;
    const kk = new Float64Array(outSize * ksize), bounds = new Int32Array(outSize * 2);
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
      const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
      const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
      let ww = 0.0;
      for (let x = 0; x < xmax; x++) {
        const w = filter.f((x + xmin - center + 0.5) * ss);
        kk[xx * ksize + x] = w;
        ww += w;
      }
      for (let x = 0; x < xmax; x++) if (ww !== 0.0) kk[xx * ksize + x] /= ww;
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    return {kk, bounds, ksize};
  }

  function fixedPoint(kk) {  // normalize_coeffs_8bpc: PRECISION_BITS = 22
    return Int32Array.from(kk, k => k < 0 ? Math.trunc(-0.5 + k * 4194304) : Math.trunc(0.5 + k * 4194304));
  }

  function resamplePass(src, srcW, srcH, ch, outW, outH, c, horizontal, eightBit, rowOffset) {
    const out = eightBit ? new Uint8Array(outW * outH * ch) : new Float32Array(outW * outH * ch);
    const k = eightBit ? fixedPoint(c.kk) : c.kk;
    for (let yy = 0; yy < outH; yy++) {
      for (let xx = 0; xx < outW; xx++) {
        const i = horizontal ? xx : yy;
        const min = c.bounds[i * 2], n = c.bounds[i * 2 + 1], kOff = i * c.ksize;
        for (let b = 0; b < ch; b++) {
          let ss = eightBit ? 2097152 : 0.0;  // 1 << (PRECISION_BITS - 1): rounding
          for (let x = 0; x < n; x++) {
            const at = horizontal ? ((yy + rowOffset) * srcW + x + min) : ((x + min) * srcW + xx);
            ss += src[at * ch + b] * k[kOff + x];
          }
          out[(yy * outW + xx) * ch + b] = eightBit ? Math.min(Math.max(Math.floor(ss / 4194304), 0), 255) : ss;
        }
      }
    }
    return out;
  }

  function resize(src, w, h, ch, outW, outH, filterName, eightBit) {
    // Image.resize((outW, outH), BOX | BILINEAR) on an F (float32) or 8-bit image: horizontal pass, then vertical
    const filter = FILTERS[filterName];
    const cv = coeffs(h, outH, filter), ch_ = coeffs(w, outW, filter);
    const needH = outW !== w, needV = outH !== h;
    const first = cv.bounds[0], last = cv.bounds[outH * 2 - 2] + cv.bounds[outH * 2 - 1];
    let cur = src, curH = h;
    if (needH) {
      if (needV) for (let i = 0; i < outH; i++) cv.bounds[i * 2] -= first;
      const rows = needV ? last - first : h;
      cur = resamplePass(src, w, h, ch, outW, rows, ch_, true, eightBit, needV ? first : 0);
      curH = rows;
    }
    if (needV) cur = resamplePass(cur, outW, curH, ch, outW, outH, cv, false, eightBit, 0);
    return (needH || needV) ? cur : (eightBit ? Uint8Array.from(src) : Float32Array.from(src));
  }

  function reduceRGBA(img, factor) {
    // Image.reduce(factor) on RGBA: premultiplied (RGBa), box sums rounded as Reduce.c, then unpremultiplied
    const {width: w, height: h, data} = img, ow = Math.ceil(w / factor), oh = Math.ceil(h / factor);
    const pre = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i += 4) {
      const a = data[i + 3];
      for (let c = 0; c < 3; c++) { const t = data[i + c] * a + 128; pre[i + c] = ((t >> 8) + t) >> 8; }
      pre[i + 3] = a;
    }
    const out = new Uint8ClampedArray(ow * oh * 4);
    for (let y = 0; y < oh; y++) for (let x = 0; x < ow; x++) {
      const y1 = Math.min(y * factor + factor, h), x1 = Math.min(x * factor + factor, w);
      const area = (y1 - y * factor) * (x1 - x * factor);
      const mult = Math.trunc(f32(4294967296 / f32(256 * area))), amend = Math.floor(area / 2);
      let s0 = amend, s1 = amend, s2 = amend, s3 = amend;
      for (let yy = y * factor; yy < y1; yy++) {
        for (let i = (yy * w + x * factor) * 4, end = (yy * w + x1) * 4; i < end; i += 4) {
          s0 += pre[i]; s1 += pre[i + 1]; s2 += pre[i + 2]; s3 += pre[i + 3];
        }
      }
      const o4 = (y * ow + x) * 4;
      out[o4] = Math.floor(s0 * mult / 16777216);
      out[o4 + 1] = Math.floor(s1 * mult / 16777216);
      out[o4 + 2] = Math.floor(s2 * mult / 16777216);
      out[o4 + 3] = Math.floor(s3 * mult / 16777216);
      const o = (y * ow + x) * 4, a = out[o + 3];
      if (a === 255 || a === 0) continue;
      for (let c = 0; c < 3; c++) out[o + c] = Math.min(255, Math.floor(255 * out[o + c] / a));
    }
    return {width: ow, height: oh, data: out};
  }

  function onBackground(img, bg) {
    // Image.alpha_composite(plain bg, img) -> RGB bytes (AlphaComposite.c, PRECISION_BITS 7)
    const n = img.width * img.height, out = new Uint8Array(n * 3), d = img.data;
    const div255 = a => ((a >> 8) + a) >> 8;
    for (let i = 0; i < n; i++) {
      const a = d[i * 4 + 3];
      for (let c = 0; c < 3; c++) {
        if (a === 0) { out[i * 3 + c] = bg; continue; }
        const outa255 = a * 255 + 255 * (255 - a);
        const coef1 = Math.floor(a * 255 * 255 * 128 / outa255), coef2 = 255 * 128 - coef1;
        out[i * 3 + c] = div255(d[i * 4 + c] * coef1 + bg * coef2 + (0x80 << 7)) >> 7;
      }
    }
    return out;
  }

  // --- the app's preprocessing -------------------------------------------------------------------------

  function channels(img) {
    // (gray plane, alpha plane or null): a grey picture's value as is (Pillow's L), colour as ITU-R 601 luma
    const {width: w, height: h, data: d} = img, n = w * h;
    let opaque = true, grey = true;
    for (let i = 0; i < n; i++) {
      if (d[i * 4 + 3] !== 255) opaque = false;
      if (d[i * 4] !== d[i * 4 + 1] || d[i * 4] !== d[i * 4 + 2]) grey = false;
    }
    const gray = plane(h, w), alpha = opaque ? null : plane(h, w);
    const wr = f32(0.299), wg = f32(0.587), wb = f32(0.114);
    for (let i = 0; i < n; i++) {
      gray.d[i] = grey ? d[i * 4] : f32(f32(f32(d[i * 4] * wr) + f32(d[i * 4 + 1] * wg)) + f32(d[i * 4 + 2] * wb));
      if (alpha) alpha.d[i] = d[i * 4 + 3];
    }
    return {gray, alpha};
  }

  function toGrayInk(img) {
    // any picture -> float32 plane, bright ink on a 0 background (inference.to_gray_ink)
    const side = Math.max(img.width, img.height);
    if (side > 2 * WORK_SIDE) img = reduceRGBA(img, Math.floor(side / WORK_SIDE));  // big photos: box-reduced first
    let {gray, alpha} = channels(img);
    if (alpha) {
      const sa = strided(alpha).plane;
      if (median(take(sa.d, borderIndex(sa.h, sa.w)), true) < 128) {
        gray = alpha;  // transparent background (a drawing canvas): whatever was painted is ink
      } else {
        const sg = strided(gray).plane;
        const fill = f32(median(sg.d.filter((_, i) => sa.d[i] >= 128), true));
        for (let i = 0; i < gray.d.length; i++) {
          const cover = f32(alpha.d[i] / 255.0);
          gray.d[i] = f32(f32(gray.d[i] * cover) + f32(fill * f32(1.0 - cover)));
        }
      }
    }
    const {light, plane: [A, B, C], min} = floorOf(gray);
    const out = plane(gray.h, gray.w);
    if (min >= 254.0) return out;
    const cx = new Float32Array(gray.w);
    for (let x = 0; x < gray.w; x++) cx[x] = C * x;
    for (let y = 0; y < gray.h; y++) {
      const row = f32(A + f32(B * y));
      for (let x = 0, i = y * gray.w; x < gray.w; x++, i++) {
        const g = light ? f32(255.0 - gray.d[i]) : gray.d[i];
        const fl = Math.min(f32(row + cx[x]), 254.0);
        const v = f32(f32(g - fl) * f32(255.0 / f32(255.0 - fl)));
        out.d[i] = v < 0.0 ? 0.0 : v > 255.0 ? 255.0 : v;
      }
    }
    return out;
  }

  function inkBox(mask, h, w) {
    // bounding box (top, bottom, left, right; exclusive ends) minus tiny far-off specks (inference._ink_box)
    const rows = new Float64Array(h), cols = new Float64Array(w);
    let total = 0;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (mask[y * w + x]) { rows[y]++; cols[x]++; total++; }
    const drop = Math.trunc(total * TRIM_FRACTION);
    const span = profile => {
      const cum = [];
      let s = 0;
      for (const v of profile) { s += v; cum.push(s); }
      const last = cum[cum.length - 1];
      let lo = 0;
      while (lo < cum.length && cum[lo] <= drop) lo++;  // searchsorted side="right"
      let hi = 0;
      while (hi < cum.length && cum[hi] < last - drop) hi++;  // searchsorted side="left"
      return [lo, Math.max(hi + 1, lo + 1)];
    };
    return [...span(rows), ...span(cols)];
  }

  function mnistStyle(g, size, box) {
    // crop to the ink, fit its longer side to `box`, centre of mass at the centre -> Uint8Array size*size
    let peak = 0;
    for (let i = 0; i < g.d.length; i++) if (g.d[i] > peak) peak = g.d[i];
    if (peak > 0 && peak <= 1.0) {  // 0..1 images
      g = plane(g.h, g.w, Float32Array.from(g.d, v => f32(v * 255.0)));
      peak = f32(peak * 255.0);
    }
    if (peak < MIN_INK) throw new BlankImage(DRAW_HINT);
    const thr = f32(Math.max(MASK_FRACTION * peak, MIN_INK / 2));
    const mask = new Uint8Array(g.d.length);
    for (let i = 0; i < mask.length; i++) mask[i] = g.d[i] > thr ? 1 : 0;
    const [top, bottom, left, right] = inkBox(mask, g.h, g.w);
    const h = bottom - top, w = right - left, extent = Math.max(h, w);
    if (extent < Math.max(3, MIN_EXTENT * Math.max(g.h, g.w))) throw new BlankImage(DRAW_HINT);
    let filled = 0;
    for (let y = top; y < bottom; y++) for (let x = left; x < right; x++) filled += mask[y * g.w + x];
    const fill = filled / (h * w);
    if (fill > 0.65 && h / w >= 0.67 && h / w <= 1.5 && extent < 0.12 * Math.max(g.h, g.w)) {
      throw new BlankImage(DRAW_HINT);  // a round, filled, small blob is a click of the brush, not a digit
    }

    const crop = new Float32Array(h * w);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) crop[y * w + x] = g.d[(top + y) * g.w + left + x];
    const scale = box / extent;
    const nh = Math.max(1, roundHalfEven(h * scale)), nw = Math.max(1, roundHalfEven(w * scale));
    const patch = resize(crop, w, h, 1, nw, nh, scale < 1 ? "box" : "bilinear", false);
    for (let i = 0; i < patch.length; i++) patch[i] = Math.max(patch[i], 0.0);
    const mass = pairwiseSum(patch, 0, patch.length, f32);
    if (mass <= 0) throw new BlankImage(DRAW_HINT);
    // (patch.sum(axis=1) * arange).sum(): row sums pairwise in float32, weighted and summed in float64
    const rows = Float64Array.from({length: nh}, (_, y) => pairwiseSum(patch, y * nw, nw, f32) * y);
    const cols = new Float64Array(nw);  // axis-0 sums add row after row
    for (let x = 0; x < nw; x++) {
      let col = 0;
      for (let y = 0; y < nh; y++) col = f32(col + patch[y * nw + x]);
      cols[x] = col * x;
    }
    const my = pairwiseSum(rows, 0, nh, Number), mx = pairwiseSum(cols, 0, nw, Number);
    const cy = my / mass, cx = mx / mass, mid = (size - 1) / 2;
    const oy = Math.min(Math.max(Math.floor(mid - cy + 0.5), 0), size - nh);
    const ox = Math.min(Math.max(Math.floor(mid - cx + 0.5), 0), size - nw);
    const out = new Float32Array(size * size);
    let top8 = 0;
    for (let y = 0; y < nh; y++) for (let x = 0; x < nw; x++) {
      out[(oy + y) * size + ox + x] = patch[y * nw + x];
      top8 = Math.max(top8, patch[y * nw + x]);
    }
    const k = f32(255.0 / top8);
    return Uint8Array.from(out, v => Math.min(Math.max(Math.trunc(f32(f32(v * k) + 0.5)), 0), 255));
  }

  function fitRGB(img, h, w) {
    // flatten transparency onto white, resize bilinear to w x h (core.images.fit_rgb)
    let opaque = true;
    for (let i = 3; i < img.data.length; i += 4) if (img.data[i] !== 255) { opaque = false; break; }
    let rgb;
    if (opaque) {
      rgb = new Uint8Array(img.width * img.height * 3);
      for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
        rgb[i] = img.data[j]; rgb[i + 1] = img.data[j + 1]; rgb[i + 2] = img.data[j + 2];
      }
    } else {
      rgb = onBackground(img, 255);
    }
    const x = resize(rgb, img.width, img.height, 3, w, h, "bilinear", true);
    let flat = true;
    for (let c = 0; c < 3 && flat; c++) {
      let lo = 255, hi = 0;
      for (let i = c; i < x.length; i += 3) { lo = Math.min(lo, x[i]); hi = Math.max(hi, x[i]); }
      if (hi - lo >= FLAT_RANGE) flat = false;
    }
    if (flat) throw new BlankImage(PHOTO_HINT);
    return x;
  }

  function onPlain(img, level) {
    // the picture on a plain grey level, opaque (core.data.images.flatten_alpha), as RGBA again
    const rgb = onBackground(img, level), data = new Uint8ClampedArray(img.width * img.height * 4).fill(255);
    for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
      data[j] = rgb[i];
      data[j + 1] = rgb[i + 1];
      data[j + 2] = rgb[i + 2];
    }
    return {width: img.width, height: img.height, data};
  }

  function preprocess(img, inputShape, box, background) {
    // one model input (Uint8Array, row-major inputShape) from RGBA pixels (inference.preprocess); with a background
    // level, from the picture on that plain grey (the app's own datasets store drawings on black: uploads.canvas_image)
    if (background !== undefined && background !== null) img = onPlain(img, background);
    const [h, w] = inputShape;
    if (inputShape.length === 3 && inputShape[2] === 3) return fitRGB(img, h, w);
    const side = Math.max(h, w);
    const digit = mnistStyle(toGrayInk(img), side, box || Math.max(1, roundHalfEven(side * 20 / 28)));
    return h === w ? digit : resize(digit, side, side, 1, w, h, "bilinear", true);
  }

  function softmax(logits, n, c) {
    const out = new Float32Array(n * c);
    for (let i = 0; i < n; i++) {
      let m = -Infinity, s = 0;
      for (let j = 0; j < c; j++) m = Math.max(m, logits[i * c + j]);
      const e = new Float64Array(c);
      for (let j = 0; j < c; j++) { e[j] = Math.exp(logits[i * c + j] - m); s += e[j]; }
      for (let j = 0; j < c; j++) out[i * c + j] = e[j] / s;
    }
    return out;
  }

  // --- loading: gzip+base64 strings (what the exported page's scripts hold) or bytes ---------------------

  async function bytesOf(x) {
    if (typeof x !== "string") return x instanceof Uint8Array ? x : new Uint8Array(x);
    const bin = atob(x), raw = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) raw[i] = bin.charCodeAt(i);
    if (raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;  // not gzip
    const stream = new Blob([raw]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  class Classifier {
    constructor(session, meta) {
      this.session = session;
      this.meta = meta;
      this.classes = meta.classes;
      this.inputShape = meta.input_shape;
      this.inputName = session.inputNames[0];
      this.outputName = session.outputNames[0];
    }

    preprocess(img) { return preprocess(img, this.inputShape, this.meta.ink_box, this.meta.background); }

    async logits(batch, n) {
      // raw 0-255 pixels, n images of inputShape, as float32 -> the model's logits (n x classes)
      const data = batch instanceof Float32Array ? batch : Float32Array.from(batch);
      const tensor = new root.ort.Tensor("float32", data, [n, ...this.inputShape]);
      const result = await this.session.run({[this.inputName]: tensor});
      return result[this.outputName].data;
    }

    async probabilities(batch, n) {
      return softmax(await this.logits(batch, n), n, this.classes.length);
    }

    async classify(img) {
      const input = this.preprocess(img);
      const probs = await this.probabilities(input, 1);
      const top = Array.from(probs, (p, i) => [this.classes[i], p]).sort((a, b) => b[1] - a[1]);
      return {input, probs, top};
    }
  }

  async function load({model, wasm, glue, meta}) {
    // one thread, no proxy worker, the wasm from memory and its JS glue from a blob: nothing is fetched
    const ort = root.ort;
    if (!ort) throw new Error("ONNX Runtime Web (ort.wasm.min.js) must be loaded before classifier.js runs");
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    if (wasm) ort.env.wasm.wasmBinary = await bytesOf(wasm);
    if (glue) ort.env.wasm.wasmPaths = {mjs: URL.createObjectURL(new Blob([glue], {type: "text/javascript"}))};
    const session = await ort.InferenceSession.create(await bytesOf(model), {executionProviders: ["wasm"]});
    return new Classifier(session, meta);
  }

  // --- drawing pads and confidence bars in a page (web/pad.js; web/page.js does the same by itself) ---------------

  function ink(ctx, from, to, width) {
    // one segment of a stroke as the app's canvas draws it: white, round ends (from null: a dot at `to`)
    ctx.strokeStyle = "#ffffff";
    ctx.lineWidth = width;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...(from || to));
    ctx.lineTo(...to);
    ctx.stroke();
  }

  function bars(container, classes) {
    // a row a class in `container` (.row > .name, .track > .fill, .value); show(probs) fills them, marks the top
    // class .best and returns the lines above them: {top: "7 · 99.2%", next: "Next: 1 0.8% · 9 0.0%"}
    container.textContent = "";
    const rows = classes.map(name => {
      const row = container.ownerDocument.createElement("div");
      row.className = "row";
      row.dataset.class = name;
      row.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span>' +
        '<span class="value"></span>';
      row.querySelector(".name").textContent = name;
      container.appendChild(row);
      return row;
    });
    const fmt = p => (100 * p).toFixed(1) + "%";
    return function show(probs) {
      const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]);
      rows.forEach((row, i) => {
        row.dataset.p = probs[i].toFixed(6);
        row.classList.toggle("best", i === order[0]);
        row.querySelector(".fill").style.width = fmt(probs[i]);
        row.querySelector(".value").textContent = fmt(probs[i]);
      });
      return {top: `${classes[order[0]]} · ${fmt(probs[order[0]])}`,
              next: "Next: " + order.slice(1, 3).map(i => `${classes[i]} ${fmt(probs[i])}`).join(" · ")};
    };
  }

  root.ClassifierLab = {load, preprocess, toGrayInk, mnistStyle, softmax, onBackground, ink, bars, BlankImage,
                        Classifier};
})(typeof window !== "undefined" ? window : globalThis);
