// The Train page's live curves (ui/live_chart.py): four uPlot canvases that append the points the server sends.
// Streamlit calls the default export again with each new `data` on the same parentElement, and calls the
// cleanup it returns only when the element goes away: what is drawn so far lives in STATE between calls.
const STATE = new WeakMap();
const BLUE = "#1f77b4", ORANGE = "#ff7f0e", HEIGHT = 250;

function css(root, name, fallback) {
  return getComputedStyle(root).getPropertyValue(name).trim() || fallback;
}

function options(root, title, xLabel, series) {
  const ink = css(root, "--st-text-color", "#31333f"), grid = css(root, "--st-border-color-light", "#e6e6e6");
  const axis = { stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  return {
    title, width: 400, height: HEIGHT, legend: { show: series.length > 1 },
    // empty axes (0–1) until the first points arrive, as the page had before
    scales: { x: { time: false, range: (u, lo, hi) => (lo == null ? [0, 1] : uPlot.rangeNum(lo, hi, 0, true)) },
              y: { range: (u, lo, hi) => (lo == null ? [0, 1] : uPlot.rangeNum(lo, hi, 0.1, true)) } },
    cursor: { drag: { x: false, y: false } },
    axes: [{ ...axis, label: xLabel, ...(xLabel === "epoch" ? { incrs: [1, 2, 5, 10, 20, 50, 100] } : {}) },
           { ...axis, size: 60 }],
    series: [{ label: xLabel }, ...series],
  };
}

function line(label, stroke, dash, points) {
  return { label, stroke, width: 1.5, dash, points: { show: points, size: 6, fill: stroke }, spanGaps: true };
}

function mount(root) {
  const box = root.querySelector(".live-curves");
  const make = (title, x, series) => new uPlot(options(box, title, x, series), [[], ...series.map(() => [])],
                                               box.querySelector(".panels").appendChild(document.createElement("div")));
  const s = {
    box, run: null, next: 0, k: 1, x: [], loss: [], acc: [], tip: null, epochs: null, dirty: false,
    resets: 0, appends: 0,
    plots: [
      make("loss per batch", "batch", [line("loss", BLUE, undefined, false)]),
      make("accuracy per batch", "batch", [line("accuracy", ORANGE, undefined, false)]),
      make("loss", "epoch", [line("train", BLUE, undefined, true), line("validation", BLUE, [6, 4], true)]),
      make("accuracy", "epoch", [line("train", BLUE, undefined, true), line("validation", BLUE, [6, 4], true)]),
    ],
  };
  const fit = () => {
    const w = Math.max(200, Math.floor(box.clientWidth / 2) - 8);
    s.plots.forEach((p) => p.width !== w && p.setSize({ width: w, height: HEIGHT }));
  };
  s.resize = new ResizeObserver(fit);
  s.resize.observe(box);
  fit();
  // a hidden tab keeps what arrives and draws it once it is shown again
  s.onVisible = () => !document.hidden && s.dirty && draw(s);
  document.addEventListener("visibilitychange", s.onVisible);
  box.drawn = () => drawn(s);
  return s;
}

function receive(s, d) {
  if (d.reset) {
    Object.assign(s, { run: d.run, k: d.k, x: d.x.slice(), loss: d.loss.slice(), acc: d.acc.slice(), drawnEpochs: -1 });
    s.resets += 1;
    s.last = "whole";
  } else if (d.run === s.run && d.k === s.k && d.from === s.next) {
    s.x.push(...d.x);
    s.loss.push(...d.loss);
    s.acc.push(...d.acc);
    s.appends += 1;
    s.last = "appended";
  } else if (d.run !== s.run || d.to !== s.next) {
    // points were missed (this element is new to the session, or an update was skipped): ask for all of them
    s.resend(s.next);
    return;
  }
  Object.assign(s, { next: d.to, tip: d.tip, epochs: d.epochs, max: d.max });
  draw(s);
}

// the per-batch series as drawn: every k-th batch, then the newest one (the tip) if it is not among them
function series(s) {
  const tip = s.tip ? [s.tip] : [];
  return { x: s.x.concat(tip.map((t) => t[0])), loss: s.loss.concat(tip.map((t) => t[1])),
           acc: s.acc.concat(tip.map((t) => t[2])) };
}

function draw(s) {
  if (document.hidden) {
    s.dirty = true;
    return;
  }
  s.dirty = false;
  const { x, loss, acc } = series(s);
  s.plots[0].setData([x, loss]);
  s.plots[1].setData([x, acc]);
  const e = s.epochs || { epoch: [] };
  if (e.epoch.length !== s.drawnEpochs) {  // these change once an epoch
    s.drawnEpochs = e.epoch.length;
    s.plots[2].setData([e.epoch, e.loss, e.val_loss]);
    s.plots[3].setData([e.epoch, e.accuracy, e.val_accuracy]);
  }
  s.box.querySelector(".caption").textContent = s.next
    ? `${s.next.toLocaleString("en-US")} batches · at most ${s.max.toLocaleString("en-US")} points drawn, smoothed`
    : "";
  // what the benchmark reads without a call: how much of the run is drawn
  Object.assign(s.box.dataset,
                { points: x.length, first: x.length ? x[0] : "", last: x.length ? x[x.length - 1] : "" });
}

// what the browser tests read: the points as drawn, and how they came (whole or appended)
function drawn(s) {
  const { x, loss } = series(s);
  return { run: s.run, batches: s.next, k: s.k, x, loss, epochs: (s.epochs || { epoch: [] }).epoch.length,
           resets: s.resets, appends: s.appends, last: s.last, waiting: s.dirty };
}

export default function ({ data, parentElement, setTriggerValue }) {
  let s = STATE.get(parentElement);
  if (!s) {
    s = mount(parentElement);
    STATE.set(parentElement, s);
  }
  s.resend = (have) => setTriggerValue("resend", have);
  receive(s, data);
  return () => {
    s.resize.disconnect();
    document.removeEventListener("visibilitychange", s.onVisible);
    s.plots.forEach((p) => p.destroy());
    STATE.delete(parentElement);
  };
}
