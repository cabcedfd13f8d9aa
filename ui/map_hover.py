"""Thumbnails on hover for the embedding map: Plotly's hover label holds only text, so a small component
listens to the map's `plotly_hover` events and shows the test image beside the pointer, cut from one atlas
image of the whole test set (sent once; Streamlit's message cache keeps it from being sent again)."""
from __future__ import annotations

import base64
import io

import numpy as np
import streamlit as st
from PIL import Image

TILE = 32    # the atlas keeps each image at ≤ 32 px (28 px test images as they are)
SHOWN = 112  # px of the thumbnail on screen, pixelated
CHUNK = 512

_HTML = '<div class="thumb"><div class="img"></div><div class="cap"></div></div>'
_CSS = """
.thumb { position: fixed; display: none; pointer-events: none; z-index: 1000; padding: 4px;
         background: var(--st-background-color, #fff); border: 1px solid #bbb; border-radius: 4px;
         box-shadow: 0 2px 8px rgba(0, 0, 0, .25); font: 12px sans-serif; }
.img { image-rendering: pixelated; background-repeat: no-repeat; }
.cap { max-width: 220px; margin-top: 2px; color: var(--st-text-color, #222); }
"""
# binds to the chart named by data.chart once Plotly has drawn it (and again if Streamlit redraws it)
_JS = """
export default function ({ data, parentElement }) {
  const tip = parentElement.querySelector(".thumb");
  const img = tip.querySelector(".img"), cap = tip.querySelector(".cap");
  const s = data.shown, cols = data.cols;
  Object.assign(img.style, { width: s + "px", height: s + "px", backgroundImage: `url(${data.atlas})`,
                             backgroundSize: `${cols * s}px auto` });
  let gd = null, at = [0, 0];
  const move = (e) => { at = [e.clientX, e.clientY]; };
  const hover = (ev) => {
    const p = ev && ev.points && ev.points[0];
    if (!p || p.customdata === undefined) return;
    const i = Number(p.customdata);
    img.style.backgroundPosition = `${-(i % cols) * s}px ${-Math.floor(i / cols) * s}px`;
    cap.textContent = p.text || "";
    tip.style.display = "block";
    const right = at[0] + 20 + tip.offsetWidth < window.innerWidth;
    tip.style.left = (right ? at[0] + 20 : at[0] - 20 - tip.offsetWidth) + "px";
    tip.style.top = Math.max(4, at[1] - tip.offsetHeight / 2) + "px";
    tip.dataset.index = String(i);
  };
  const unhover = () => { tip.style.display = "none"; };
  const unbind = () => {
    if (!gd) return;
    gd.removeListener && gd.removeListener("plotly_hover", hover);
    gd.removeListener && gd.removeListener("plotly_unhover", unhover);
    gd.removeEventListener("mousemove", move);
    gd = null;
  };
  const bind = () => {
    const found = document.querySelector(`.st-key-${data.chart} .js-plotly-plot`);
    if (found === gd || !found || !found.on) return;
    unbind();
    gd = found;
    gd.on("plotly_hover", hover);
    gd.on("plotly_unhover", unhover);
    gd.addEventListener("mousemove", move);
  };
  bind();
  const timer = setInterval(bind, 500);
  return () => { clearInterval(timer); unbind(); unhover(); };
}
"""
_component = st.components.v2.component("classifier_lab.map_hover", html=_HTML, css=_CSS, js=_JS)


def atlas(images: np.ndarray, tile: int = TILE) -> tuple[bytes, int]:
    """All images in one WebP, row-major in `cols` columns of ≤ tile px squares: (image bytes, cols)."""
    shape = images.shape[1:]
    gray = len(shape) == 2 or shape[-1] == 1
    n, size = len(images), min(tile, max(shape[:2]))
    cols = int(np.ceil(np.sqrt(n)))
    sheet = Image.new("L" if gray else "RGB", (cols * size, -(-n // cols) * size))
    for start in range(0, n, CHUNK):  # a streamed folder's test set is read a chunk at a time
        for i, image in enumerate(np.asarray(images[start:start + CHUNK]).astype(np.uint8, copy=False), start):
            thumb = Image.fromarray(image.reshape(shape[:2]) if gray else image)
            if thumb.size != (size, size):
                thumb = thumb.resize((size, size), Image.Resampling.BILINEAR)
            sheet.paste(thumb, ((i % cols) * size, (i // cols) * size))
    buf = io.BytesIO()
    sheet.save(buf, "WEBP", quality=90, method=0)  # Fashion-MNIST's 10,000: 2.6 MB in 0.5 s (PNG 4.1, JPEG q90 3.8)
    return buf.getvalue(), cols


@st.cache_data(max_entries=4, show_spinner=False)
def _atlas_url(name: str, path: str | None, source: str, which: str, _images) -> tuple[str, int]:
    sheet, cols = atlas(_images)
    return "data:image/webp;base64," + base64.b64encode(sheet).decode("ascii"), cols


def thumbnails_on_hover(chart_key: str, ds, data_path: str | None, images=None, which: str = "test") -> None:
    """Show each image beside the pointer while it hovers a point of the chart `chart_key` (points carry their
    index as customdata): the test set's, or `images` (read by slices) named by `which`, a name that changes
    with them."""
    url, cols = _atlas_url(ds.name, data_path, ds.source, which, ds.x_test if images is None else images)
    _component(key=f"{chart_key}_hover", data={"chart": chart_key, "atlas": url, "cols": cols, "shown": SHOWN})
