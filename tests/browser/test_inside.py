"""Inside the model, in the browser: activations follow the drawing on Predict; a lasso on the embedding
map fills the gallery with exactly the selected images; Metrics and Model draw (bundled MNIST model)."""
import re

import pytest

from browser_helpers import (assert_no_error, drawing_pad, expect, main, open_app, open_page, screenshot,
                             stroke, use_bundled, wait_for, wait_idle)

pytestmark = pytest.mark.browser

# a checksum of every activation picture: changes whenever any layer's values change
ACTIVATIONS = """() => [...document.querySelectorAll('[class*="st-key-act_"]')].map(box => {
    const k = parseInt(box.className.match(/st-key-act_(\\d+)/)[1]), gd = box.querySelector('.js-plotly-plot');
    if (!gd || !gd.calcdata) return [k, '', 0];
    const z = gd.calcdata[0][0].z; let s = 0, n = 0;  // the decoded 2-D values plotly draws
    for (const row of z) for (const v of row) if (Number.isFinite(v)) { s += v * (1 + (n++ % 7)); }
    return [k, gd.layout.title.text.replace(/<[^>]+>/g, ''), Math.round(s * 1000) / 1000];
}).sort((a, b) => a[0] - b[0]).map(([k, t, s]) => [t, s])"""


def activations(page) -> list:
    return page.evaluate(ACTIVATIONS)


def test_activations_follow_the_drawing(page, screenshot_dir):
    open_app(page)
    open_page(page, "Predict", timeout=120_000)
    use_bundled(page, "MNIST digits", timeout=120_000)
    canvas = drawing_pad(page)  # Predict's pad: the model runs in the browser, the activations on the server
    stroke(page, canvas, [(140, 45), (140, 235)])  # a 1
    charts = main(page).locator('[class*="st-key-act_"] .js-plotly-plot')
    expect(charts).to_have_count(5, timeout=60_000)  # four conv blocks and the last hidden layer
    wait_idle(page)
    one = activations(page)
    titles = [t for t, _ in one]
    assert [re.search(r"· (.+)$", t).group(1) for t in titles] == ["28×28×32", "28×28×32", "14×14×64",
                                                                  "14×14×64", "256 units"], titles
    assert all(s > 0 for _, s in one), one  # something is active in every layer

    stroke(page, canvas, [(90, 60), (190, 60)])  # a bar across the top: the drawing changes
    wait_for(lambda: activations(page) != one, 60, message="the activations to follow the drawing")
    wait_idle(page)
    two = activations(page)
    assert [t for t, _ in two] == titles
    assert all(a != b for (_, a), (_, b) in zip(one, two)), [(a, b) for (_, a), (_, b) in zip(one, two)]  # every layer changed
    assert_no_error(page)
    screenshot(page, screenshot_dir / "predict_activations.png")


SELECTED = """() => window.__picked ? window.__picked.map(t => parseInt(t.slice(1))).sort((a, b) => a - b) : null"""


# a point of the map's first trace far from the others (nothing else under the pointer): its test index
# (customdata) and its position on the page
HOVER_TARGET = """gd => {
    const t = gd._fullData[0], xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
    const px = (k) => [box.left + xa._offset + xa.l2p(t.x[k]), box.top + ya._offset + ya.l2p(t.y[k])];
    const all = gd._fullData.flatMap(d => Array.from(d.x, (x, k) => [box.left + xa._offset + xa.l2p(x),
                                                                      box.top + ya._offset + ya.l2p(d.y[k])]));
    let best = 0, far = -1;
    for (let k = 0; k < Math.min(t.x.length, 300); k++) {
        const [x, y] = px(k);
        const near = Math.min(...all.map(([u, v]) => (u === x && v === y) ? Infinity : Math.hypot(u - x, v - y)));
        if (near > far) { far = near; best = k; }
    }
    const [x, y] = px(best);
    return {x, y, index: Number(t.customdata[best])};
}"""


def test_lasso_on_the_embedding_map_fills_the_gallery(page, screenshot_dir):
    open_app(page)
    open_page(page, "Embedding map", timeout=120_000)
    use_bundled(page, "MNIST digits", timeout=180_000)
    m = main(page)
    plot = page.locator('[class*="st-key-e_map_"] .js-plotly-plot')
    expect(plot).to_be_visible(timeout=180_000)
    wait_idle(page, 180_000)
    expect(m.get_by_text("Nothing selected yet.")).to_be_visible()
    # what plotly itself reports as selected (the event Streamlit forwards), kept for the check below
    plot.evaluate("gd => gd.on('plotly_selected', e => { if (e) window.__picked = e.points.map(p => p.text); })")

    # a lasso drawn as a rectangle around the middle of the map, as a person drags it
    box = page.locator('[class*="st-key-e_map_"] .nsewdrag').first.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.40, box["y"] + box["height"] * 0.40
    x1, y1 = box["x"] + box["width"] * 0.60, box["y"] + box["height"] * 0.60
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0, y0 + 1)]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    picked = page.wait_for_function(SELECTED, timeout=30_000).json_value()
    assert picked, "the lasso selected nothing"

    heading = m.get_by_role("heading", name=re.compile(r"^Selected images \(\d+\)"))
    expect(heading).to_have_text(re.compile(rf"^Selected images \({len(picked)}\)"), timeout=60_000)
    wait_idle(page)
    captions = m.locator("[data-testid=stImageCaption]").filter(has_text=re.compile(r"^#\d+ Label"))
    expect(captions.first).to_have_text(re.compile(rf"^#{picked[0]} Label"), timeout=60_000)
    # the gallery's images arrive one by one: read it once all of the first page is there
    expect(captions).to_have_count(min(len(picked), 24), timeout=60_000)
    texts = captions.all_inner_texts()
    shown = [int(re.match(r"#(\d+) Label", c).group(1)) for c in texts]
    assert shown == picked[:24], (texts, picked)  # the first page: the selection in test-index order
    if len(picked) > 24:
        expect(m.get_by_text(re.compile(rf"^{len(picked):,} images · showing 1–24$"))).to_be_visible()

    # hovering a point shows that test image beside the pointer (the component's tooltip names its index)
    target = plot.evaluate(HOVER_TARGET)
    page.mouse.move(target["x"] - 40, target["y"] - 40)
    page.mouse.move(target["x"], target["y"], steps=5)
    tip = page.locator(".thumb")
    expect(tip).to_be_visible(timeout=10_000)
    expect(tip).to_have_attribute("data-index", str(target["index"]))
    expect(tip).to_contain_text(f"#{target['index']} label")
    assert tip.evaluate("t => getComputedStyle(t.querySelector('.img')).backgroundImage").startswith('url("data:image/webp')
    plot.screenshot(path=str(screenshot_dir / "embedding_hover.png"))  # the map with the thumbnail over it
    page.mouse.move(5, 5)
    expect(tip).to_be_hidden(timeout=10_000)

    m.get_by_role("button", name="Details").first.click()
    expect(m.locator(".st-key-detail_bars .js-plotly-plot")).to_be_visible(timeout=30_000)
    expect(m.get_by_text(f"Test image #{picked[0]}: red = predicted class, blue = true class.")).to_be_visible()
    wait_idle(page)
    assert_no_error(page)
    screenshot(page, screenshot_dir / "embedding.png")


def test_metrics_and_model_pages(page, screenshot_dir):
    open_app(page)
    open_page(page, "Metrics", timeout=120_000)
    use_bundled(page, "MNIST digits", timeout=120_000)
    m = main(page)
    expect(m.locator(".st-key-reliability .js-plotly-plot")).to_be_visible(timeout=60_000)
    expect(m.locator(".st-key-confidence_hist .js-plotly-plot")).to_be_visible()
    expect(m.locator("[data-testid=stMetric]").filter(has_text="expected calibration error")).to_contain_text("%")
    expect(m.locator("[data-testid=stDataFrame]")).to_be_visible()
    wait_idle(page)
    assert_no_error(page)
    screenshot(page, screenshot_dir / "metrics.png")

    open_page(page, "Model", timeout=120_000)
    graph = m.locator("[data-testid=stGraphVizChart] svg")
    expect(graph).to_be_visible(timeout=60_000)
    layers = int(re.search(r": (\d+) layers,", m.get_by_text(re.compile(r"^Model .*: \d+ layers, ")).inner_text())[1])
    expect(graph.locator("g.node")).to_have_count(layers)  # a box per layer
    expect(graph.locator("g.edge")).to_have_count(layers - 1)  # a chain
    expect(graph).to_contain_text("BatchNormalization")
    wait_idle(page)
    assert_no_error(page)
    screenshot(page, screenshot_dir / "model.png")
