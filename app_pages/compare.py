"""Compare two runs on the same test split: accuracy per class, mistakes fixed, new mistakes, confusion change."""
import numpy as np
import streamlit as st

from core.analysis import compare

from core.store import runs
from ui import charts, downloads, state, training

SHOW = 18

st.title("Compare runs")
ds = state.dataset()
if ds is None:
    st.stop()
choices = [r for r in state.model_choices(ds.name) if r.usable]
byid = {r.id: r for r in choices}
pending = [a for a in training.active() if a["run"].dataset == ds.name]
if pending:  # a retrain queued from Runs: this page fills in when it finishes
    st.info("Training now: " + ", ".join(a["run_id"] for a in pending) + " — it can be compared when it finishes.")

    @st.fragment(run_every=3.0)
    def _watch() -> None:
        if len(training.active()) < len(pending):
            st.rerun(scope="app")
    _watch()
if len(choices) < 2:
    st.info("Two finished runs on this dataset are needed: train one, or retrain a run with fixes on the Runs page.")
    st.stop()
ids = list(byid)
retrained = st.session_state.get("retrained") or ()
for side, default in (("a", retrained[0] if retrained else ids[1]), ("b", retrained[1] if retrained else ids[0])):
    key, wanted = f"cmp_{side}", st.query_params.get(side)
    if wanted in byid and wanted != st.session_state.get(f"{key}_url"):
        st.session_state[key] = wanted  # a link (Runs page) or a typed address chose it
    elif st.session_state.get(key) not in byid:
        st.session_state[key] = default if default in byid else ids[0]
c1, c2 = st.columns(2)
a = byid[c1.selectbox("Before (A)", ids, key="cmp_a", format_func=lambda i: byid[i].label)]
b = byid[c2.selectbox("After (B)", ids, key="cmp_b", format_func=lambda i: byid[i].label)]
for side, chosen in (("a", a.id), ("b", b.id)):
    if st.query_params.get(side) in byid or side not in st.query_params:
        st.session_state[f"cmp_{side}_url"] = chosen
        st.query_params[side] = chosen  # the address reproduces the comparison
    # else: the address names a run still training; it stays there and is picked once that run has finished
probs_a, probs_b = state.test_probs(a, ds), state.test_probs(b, ds)
try:
    result = compare.compare(ds, a.meta, probs_a, b.meta, probs_b, runs.default_runs_dir())
except ValueError as e:
    st.error(str(e))
    st.stop()
names = list(ds.class_names)
if result["split_warning"]:
    st.warning(result["split_warning"], icon=":material/warning:")
c1.caption(f"Data version {result['versions'][0]}")
c2.caption(f"Data version {result['versions'][1]}")
m1, m2, m3, m4 = st.columns(4)
m1.metric("accuracy A", f"{result['accuracy'][0]:.2%}")
m2.metric("accuracy B", f"{result['accuracy'][1]:.2%}", f"{(result['accuracy'][1] - result['accuracy'][0]) * 100:+.2f} pts")
m3.metric("mistakes fixed", f"{len(result['fixed']):,}", help="Wrong in A, right in B (each by its own test labels)")
m4.metric("new mistakes", f"{len(result['new']):,}", help="Right in A, wrong in B", delta_color="inverse")
st.caption(f"{result['n']:,} test images in both versions; {len(result['relabelled'])} relabelled by fixes between them.")

left, right = st.columns(2)
with left:
    st.subheader("Accuracy per class")
    st.plotly_chart(charts.grouped_bars(names, {"A": result["per_class"][0] * 100, "B": result["per_class"][1] * 100},
                                        dict(title="accuracy %")), key="cmp_classes")
with right:
    st.subheader("Confusion matrix, B − A")
    st.plotly_chart(charts.confusion_diff(result["confusion_diff"], names), key="cmp_diff")

for which, title in (("fixed", "Mistakes fixed"), ("new", "New mistakes")):
    rows = compare.changes(result, which, names)
    st.subheader(f"{title} ({len(rows)})")
    if not rows:
        st.caption("None.")
        continue
    st.download_button(f"{title} as CSV", downloads.to_csv(rows), file_name=f"{which}_{a.id}_{b.id}.csv",
                       mime="text/csv", key=f"cmp_csv_{which}", icon=":material/download:")
    for k, row in enumerate(rows[:SHOW]):
        if k % 6 == 0:
            cols = st.columns(6)
        i = row["test index"]
        cols[k % 6].image(charts.enlarge(np.asarray(ds.x_test[i]), 112), width="stretch",
                          caption=f"{row.get('file') or f'#{i}'} {row['how']}: {row['label before']}→{row['label after']}, "
                                  f"predicted {row['predicted before']}→{row['predicted after']}")
