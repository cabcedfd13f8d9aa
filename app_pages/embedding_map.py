"""Embedding map: the test set as the model's last hidden layer sees it, in 2-D; select points to see them."""
import hashlib

import numpy as np
import streamlit as st

from core.analysis import metrics
from core.analysis.embedding import COLOR_BY, PROJECTIONS, color_groups
from core.data.registry import is_own
from ui import charts, data_map, inside, inside_charts, map_hover, state
from ui.gallery import Gallery

SHOW = 12

st.title("Embedding map")
if is_own(state.active_dataset()):  # an own dataset has a map before any model: the pretrained backbone's
    FROM = {"model": "the active model", "backbone": "the pretrained backbone (no training needed)"}
    source = st.radio("Features from", list(FROM), format_func=FROM.get, horizontal=True, key="e_source",
                      index=0 if state.active_run() else 1)
    if source == "backbone":
        own = state.dataset()
        if own is not None:
            data_map.show(own, "e_bb")
        st.stop()
run, ds, probs = inside.test_set()
emb = inside.embeddings(run, ds)
if emb is None:
    st.stop()
y, pred, names = np.asarray(ds.y_test), probs.argmax(1), list(ds.class_names)
kept = f"; its {emb.x.shape[1]} main directions, {emb.kept:.0%} of the variance, kept" \
    if emb.x.shape[1] < emb.width else ""
st.caption(f"Model {run.label} on {ds.source}: {len(y):,} test images, {emb.width} dimensions each "
           f"(the last hidden layer{kept}) projected to two.")

methods = [m for m, p in PROJECTIONS.items() if p.available()]
c1, c2 = st.columns(2)
method = c1.radio("Projection", methods, horizontal=True, key="e_method",
                  format_func=lambda m: f"{PROJECTIONS[m].title} ({PROJECTIONS[m].note})")
by = c2.radio("Colour by", COLOR_BY, horizontal=True, key="e_color")
xy = inside.projection(run, ds, method)
suspects = metrics.label_issues(probs, y, len(names))["index"] if by == "suspected label error" else ()
groups = color_groups(by, y, pred, names, suspects)
name = (lambda i: ds.test_files[i]) if ds.has_files else (lambda i: f"#{i}")  # own images by their file
hover = [f"{name(i)} label {names[y[i]]} · predicted {names[pred[i]]} ({probs[i, pred[i]]:.0%})" for i in range(len(y))]
colors = inside_charts.GROUP_COLORS if by in ("right / wrong", "suspected label error") else None
# a selection names points by (trace, position in it), so it belongs to one model, data, projection and
# colouring: each gets a chart key of its own, and an old selection never picks from new groups
view = hashlib.sha1(repr((str(run.path), ds.source, method, by)).encode()).hexdigest()[:10]
event = st.plotly_chart(inside_charts.embedding_map(xy, groups, hover, colors), key=f"e_map_{view}",
                        on_select="rerun", selection_mode=("points", "box", "lasso"))
st.caption("Hover a point to see its image; drag a lasso or (from the toolbar) a box around points, or click one, "
           "to see those images below; double-click the map to clear.")

picked = inside_charts.selected_indices(event.selection.points if event else [], groups)
st.subheader(f"Selected images ({len(picked):,})")
if len(picked):
    Gallery(run, ds, probs, prefix="e", numbered=True, view="embedding map").show(picked, (view, tuple(picked[:50]), len(picked)))
else:
    st.info("Nothing selected yet.")
map_hover.thumbnails_on_hover(f"e_map_{view}", ds, run.config.get("data_path"))  # after the map is on screen

st.subheader("Near-duplicates and outliers")
if not st.toggle("Find them", key="e_neigh", help="A few seconds for 10,000 images, then cached"):
    st.caption("Test images that are near-copies of each other, and the most unusual ones, as the model sees them.")
    st.stop()
dup, out = inside.neighbours(run, ds)
st.caption("Found on the embeddings (after a PCA to 50 dimensions) with scikit-learn: near-duplicates are "
           f"nearest-neighbour pairs closer than {dup['threshold']:.3g} (0.13 × the median nearest-neighbour "
           "distance, cleanlab's rule); outliers are ranked by Local Outlier Factor (20 neighbours).")
t1, t2 = st.tabs([f"Near-duplicate pairs ({len(dup['a']):,})", f"Outliers ({int(out['flagged'].sum()):,} flagged)"])
with t1:
    if not len(dup["a"]):
        st.success("No near-duplicate pairs.")
    for start in range(0, min(SHOW, len(dup["a"])), 3):
        cols = st.columns(3)
        for col, a, b, d in zip(cols, dup["a"][start:start + 3], dup["b"][start:start + 3],
                                dup["distance"][start:start + 3]):
            pair = np.concatenate([charts.enlarge(ds.x_test[a], 96), charts.enlarge(ds.x_test[b], 96)], axis=1)
            col.image(pair, caption=f"{name(a)} ({names[y[a]]}) ~ {name(b)} ({names[y[b]]}), distance {d:.3g}")
with t2:
    cols = st.columns(6)
    for k, (i, score) in enumerate(zip(out["index"][:SHOW], out["score"][:SHOW])):
        cols[k % 6].image(charts.enlarge(ds.x_test[i], 96), width="stretch",
                          caption=f"{name(i)} {names[y[i]]} → {names[pred[i]]}, LOF {score:.2f}")
