"""Runs: the saved runs as a table; compare curves, pick the active model, download, delete."""
import json

import streamlit as st

from core.model import compat

from core.store import runs
from ui import charts, downloads, fixes, state, training
from ui.model_export import export_section

st.title("Runs")


def _ended(run_id: str) -> str:
    try:
        return training.load(run_id).status
    except runs.RunError:  # deleted meanwhile
        return "ended"


def running(shown: list[dict]) -> None:
    """The runs this server was training or queueing when the page was drawn, with progress, a link to their live
    curves, and Stop. One that ends keeps its row, saying how it ended, until the next rerun of the page: the block
    never changes height under a person's pointer (a training started elsewhere shows on the next rerun)."""
    if not shown:
        return
    st.subheader("Training now")
    live = {item["run_id"]: item for item in training.active()}
    for item in shown:
        run, run_id = item["run"], item["run_id"]
        now = live.get(run_id)
        snap = training.snapshot(run_id, since=-1) if now is None or now["status"] == "running" else {}
        if now is None:
            where = _ended(run_id)
        elif now["status"] == "queued":
            where = f"number {now['position']} in the queue"
        else:
            where = f"{snap.get('status', 'starting')} · epoch {snap.get('epoch', 0)}/{snap.get('epochs_total') or '?'}"
        c1, c2, c3 = st.columns([6, 2, 1], vertical_alignment="center")
        c1.progress(training.fraction_done(snap),
                    text=f"**{run_id}** · {run.dataset} · {run.config.get('arch')} · {where}")
        c2.page_link("app_pages/train.py", label="Live curves", icon=":material/monitoring:",
                     query_params={"run": run_id})
        c3.button("Stop", key=f"stop_{run_id}", on_click=training.stop, args=(run_id,),
                  disabled=now is None or training.stopping(run_id), icon=":material/stop:", help=training.STOP_HELP)


st.fragment(run_every=2.0)(running)(training.active())
all_runs = runs.list_runs()
bundled = runs.bundled_models()
if not all_runs:
    st.info(f"No saved runs yet in `{runs.default_runs_dir()}`: start one on the Train page. "
            "The bundled default models are listed below.")


GROUPS = {"train": "Trainings", "sweep": "Sweep runs", "fold": "Label-search folds", "lr_find": "LR range tests",
          "bundled": "Bundled models"}
HIDDEN_AT_FIRST = ("fold", "lr_find")  # helpers of other pages: one pill click away


def shown(table: list[runs.Run]) -> list[runs.Run]:
    """The runs the table lists: the groups picked in a row of pills, each with its count."""
    counts = {g: sum(r.group == g for r in table) for g in GROUPS}
    present = [g for g in GROUPS if counts[g]]
    if len(present) < 2:
        return table
    picked = st.pills("Show", present, selection_mode="multi", format_func=lambda g: f"{GROUPS[g]} ({counts[g]})",
                      default=[g for g in present if g not in HIDDEN_AT_FIRST] or present, key="runs_groups",
                      on_change=lambda: st.session_state.pop("runs_table", None))  # rows mean other runs now
    return [r for r in table if r.group in picked]


def row(run: runs.Run) -> dict:
    """One table row: what was trained, how, and how well."""
    c, m = run.config, run.meta
    acc = m.get("test_accuracy")
    kind = {"lr_find": " · LR finder",  # a range test: listed, but it has no model
            "fold": f" · fold {(c.get('fold') or 0) + 1}/{c.get('folds')}"}.get(run.group, "")
    # how it went first: the table is wider than the page, and its cut-off columns are the least read
    return {"run": run.id, "dataset": run.dataset, "architecture": f"{c.get('arch')}{kind}", "status": run.status,
            "test acc": round(acc * 100, 2) if isinstance(acc, (int, float)) else None,
            "epochs": f"{m.get('epochs_done', 0)}/{c.get('epochs', '?')}", "batch": c.get("batch_size"),
            "lr": c.get("learning_rate"), "optimizer": c.get("optimizer"), "sweep": m.get("sweep"),
            "created": m.get("created", ""), "error": m.get("error", "")}


table = shown(all_runs + bundled)
event = st.dataframe([row(r) for r in table], hide_index=True, width="stretch", on_select="rerun",
                     selection_mode="multi-row", key="runs_table",
                     column_config={"test acc": st.column_config.NumberColumn(format="%.2f %%")})
picked = [table[i] for i in event.selection.rows if i < len(table)]
st.caption("Select rows to compare their curves; select one to use, download or delete it.")

if picked:
    histories = {r.id: r.history().get("epochs", []) for r in picked}
    if any(histories.values()):
        st.plotly_chart(charts.epoch_curves(histories), key="compare_chart")
    else:
        st.caption("No finished epoch to plot for the selected runs.")

if len(picked) == 2:
    st.page_link("app_pages/compare.py", label="Compare these two runs", icon=":material/compare_arrows:",
                 query_params={"a": picked[1].id, "b": picked[0].id})  # the table lists newest first
if len(picked) == 1:
    run = picked[0]
    c1, c2, c3 = st.columns(3)
    if c1.button("Retrain with fixes", disabled=not fixes.can_retrain(run), icon=":material/build:",
                 help="Same configuration, on the data with every fix so far (Fixes page)"):
        new = fixes.retrain_with_fixes(run)
        if new:
            st.success(f"Queued **{new}**: {run.config.get('arch')} on {run.dataset} with fixes.")
            st.page_link("app_pages/compare.py", label="Compare it with this run", icon=":material/compare_arrows:",
                         query_params={"a": run.id, "b": new})
    c1.button("Use as the active model", on_click=state.set_active, args=(run,), disabled=not run.usable,
              icon=":material/check:")
    if run.model_path.exists():
        # read on the click, not on every rerun (a few MB held per session otherwise); the click reruns nothing
        # (see Mistakes' download)
        c2.download_button("Download model.keras", run.model_path.read_bytes, file_name=f"{run.id}.keras",
                           mime="application/octet-stream", icon=":material/download:", on_click="ignore")
    hist = run.history().get("epochs", [])
    if hist:
        c2.download_button("History as CSV", downloads.to_csv(hist), file_name=f"{run.id}_history.csv",
                           mime="text/csv", icon=":material/table:")
        c2.download_button("History as JSON", json.dumps(hist, indent=1), file_name=f"{run.id}_history.json",
                           mime="application/json", icon=":material/data_object:")
    if not run.bundled:
        with c3.popover("Delete", icon=":material/delete:"):
            st.write(f"Delete run **{run.id}** and its model for good?")
            if st.button("Yes, delete", type="primary", key="confirm_delete"):
                try:
                    runs.delete_run(run)
                except (runs.RunError, OSError) as e:
                    st.error(f"Could not delete: {e}")
                else:
                    st.session_state.pop("runs_table", None)
                    st.rerun()
    export_section(run)
    if run.meta.get("error"):
        st.error(f"This run failed: {run.meta['error']}")
    elif run.status in ("incomplete", "interrupted"):
        st.warning("This run never finished (its process ended mid-training or mid-save); it has no usable model.")


@st.cache_data(max_entries=4, show_spinner="Checking the model…")
def _inspect(data: bytes, name: str, runs_dir: str) -> tuple:
    return compat.inspect_model(data, runs_dir, name)


def import_model() -> None:
    """Bring your own .keras model: loaded in safe mode, matched to a dataset, saved as a new run."""
    done = st.session_state.pop("import_done", None)
    if done:
        st.success(f"Imported as run **{done}**; it is now the active model.")
    with st.expander("Import a .keras model", icon=":material/upload_file:", expanded=False):
        st.caption("A model saved with Keras 3 (`model.save('my_model.keras')`) that takes 28×28 grayscale "
                   "images (MNIST, Fashion-MNIST) or colour images (Flowers, your datasets from My data) and "
                   "outputs one score per class. It is loaded in safe mode: models with custom code (Lambda "
                   "layers) are refused.")
        gen = st.session_state.setdefault("import_gen", 0)
        upload = st.file_uploader("Import a .keras model", type=["keras"], key=f"import_model_{gen}")
        if upload is None:
            return
        data, runs_dir = upload.getvalue(), str(runs.default_runs_dir())
        try:
            shape, n_out, targets = _inspect(data, upload.name, runs_dir)
        except runs.RunError as e:
            st.error(f"Cannot import this model: {e}")
            return
        active = state.active_dataset()
        dataset = st.selectbox("Use it with", targets, index=targets.index(active) if active in targets else 0,
                               format_func=state.dataset_title, key="import_dataset")
        st.caption(f"Input {compat.shape_text(shape)}, {n_out} classes.")
        if st.button("Import", type="primary", icon=":material/upload:", key="import_button"):
            try:
                run = compat.import_model(data, dataset, runs_dir, upload.name)
            except runs.RunError as e:
                st.error(f"Cannot import this model: {e}")
                return
            state.set_active(run)
            st.session_state["import_done"] = run.id
            st.session_state["import_gen"] = gen + 1  # a fresh, empty uploader
            st.session_state.pop("runs_table", None)
            st.rerun()


import_model()
