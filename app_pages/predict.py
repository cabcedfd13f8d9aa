"""Predict: draw on a canvas or upload an image; see what the model sees and its confidence."""
import streamlit as st

from core.model import compat
from core.data.registry import DATASETS, is_own
from core.analysis.inference import BlankImage, ImageError, predict_image
from ui import charts, fixes, inside, state

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]

st.title("Predict")
run = state.require_run()
model = state.model(run)
problem = compat.run_problem(run, model)
if problem:  # e.g. a model.keras that doesn't match its run: a message, not a Keras traceback
    st.error(f"**Model {run.label} cannot be used here.** {state.sentence(problem)} Pick another model in the sidebar.")
    st.stop()
shape = tuple(model.input_shape[1:])
names = run.meta.get("data", {}).get("class_names") or [str(i) for i in range(model.output_shape[-1])]
grayscale = len(shape) == 2 or shape[-1] == 1
own = is_own(run.dataset)  # own datasets may hold drawings made on the same white-on-black canvas
box = getattr(DATASETS.get(run.dataset), "ink_box", None)  # MNIST fits ink in 20 px, clothing fills 28
st.caption(f"Model: {run.label}")


def draw():
    """A white-on-black canvas; returns its RGBA pixels (None before the first stroke)."""
    from streamlit_drawable_canvas import st_canvas  # importing it outside a running app raises

    st.session_state.setdefault("canvas_gen", 0)
    c1, c2 = st.columns([3, 1])
    width = c1.slider("Stroke width", 6, 40, 20, key="stroke_width")
    if c2.button("Clear", icon=":material/ink_eraser:"):
        st.session_state["canvas_gen"] += 1  # a new key gives a fresh, empty canvas
    result = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000",
                       height=280, width=280, drawing_mode="freedraw", return_image_data=True,
                       key=f"canvas_{st.session_state['canvas_gen']}")
    st.caption("Draw one character; the prediction updates when you lift the pen.")
    try:
        return result.image_data
    except Exception:  # no drawing sent yet
        return None


def upload():
    """The uploaded file (its name goes into error messages), or None."""
    return st.file_uploader("Upload an image", type=UPLOAD_TYPES, key="upload")


def show_activations(x) -> None:
    """Every conv block's feature maps and the last hidden layer, for this input (one sub-model call)."""
    found = inside.inspector(run)
    if found is None or not found.probes:
        st.caption("This model has no conv or hidden dense layer to show.")
        return
    st.markdown("**Inside the model** — what each layer outputs for this input")
    cols = st.columns(2)
    for k, fig in enumerate(inside.activation_figures(run, x)):
        cols[k % 2].plotly_chart(fig, key=f"act_{k}")
    st.caption("Each tile is one channel's map (bright = strong activation); the grid of squares after them "
               "is the last hidden layer, one square per unit.")


left, right = st.columns([1, 1], gap="large")
with left:
    if grayscale or own:
        mode = st.radio("Input", ["Draw", "Upload"], horizontal=True, key="predict_mode")
    else:
        mode = "Upload"
        st.info(f"This model reads {shape[0]}×{shape[1]} colour photos, so there is no drawing canvas "
                "(drawing is for 28×28 grayscale models such as MNIST): upload a photo instead.")
    image = draw() if mode == "Draw" else upload()
    if own and mode == "Draw" and image is not None:
        from core.data.uploads import canvas_image
        image = canvas_image(image)  # the canvas's black, as My data stores drawings

with right:
    if image is None:
        thing = "a digit" if run.dataset == "mnist" else "one item"
        st.info(f"Draw {thing} on the canvas." if mode == "Draw" else "Upload an image to classify it.")
    else:
        try:
            out = predict_image(model, image, names, box=box)
        except BlankImage as e:
            st.info(str(e))
        except ImageError as e:
            st.error(f"Cannot read this file: {e}")
        else:
            (top, conf), *rest = out["top"]
            st.markdown(f"### {top} · {conf:.1%}")
            st.caption("Next: " + " · ".join(f"{n} {p:.1%}" for n, p in rest))
            c1, c2 = st.columns([1, 2])
            c1.image(charts.enlarge(out["input"], 168), caption="What the model sees")
            if c1.toggle("Why?", key="why_predict", help="Highlight the pixels that drove the top class"):
                overlay, how = charts.why(model, out["input"], int(out["probs"].argmax()), 168)
                c1.image(overlay, caption=f"{how} for {top}")
            c2.plotly_chart(charts.confidence_bars(out["probs"], names), key="predict_bars")
            show_activations(out["input"])
            fixes.add_controls(run.dataset, out["input"], names, int(out["probs"].argmax()))
