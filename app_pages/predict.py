"""Predict: draw on a canvas, upload an image or take a photo; see what the model sees and its confidence."""
import streamlit as st

from core.model import compat
from core.data.registry import DATASETS, is_own
from core.analysis.inference import BlankImage, ImageError, predict, predict_image
from ui import charts, fixes, inside, predict_pad, state

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]
ON_SERVER = "server"  # ?predict=server: drawings are classified on the server, as before the pad (bench/ compares)
FAILED = "pad_failed"  # session key: why this browser could not run the model (then the server does)

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
thing = "a digit" if run.dataset == "mnist" else "one item"  # what the hints ask to draw
st.caption(f"Model: {run.label}")


def server_canvas():
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


def photo(mode: str):
    """The uploaded file (its name goes into error messages) or the camera's snapshot, or None."""
    if mode == "Camera":  # drawn only when chosen: the browser asks for the camera then, not on every visit
        return st.camera_input("Take a photo to classify", key="camera")
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


def seen(where, x, top: int) -> None:
    """The model input, enlarged, and its "Why?" overlay for class `top`."""
    where.image(charts.enlarge(x, 168), caption="What the model sees")
    if where.toggle("Why?", key="why_predict", help="Highlight the pixels that drove the top class"):
        overlay, how = charts.why(model, x, top, 168)
        where.image(overlay, caption=f"{how} for {names[top]}")


@st.fragment  # a pen lift reruns this part only: the pad keeps its bars, the server adds what needs the model
def browser_draw(url: str) -> None:
    """The pad (the canvas and the bars, the model in the browser); after a pen lift, the server's parts for its input."""
    meta = {"classes": [str(n) for n in names], "input_shape": list(shape), "ink_box": box,
            "background": 0 if own else None}  # own datasets' drawings go on the canvas's black, as My data stores them
    value = predict_pad.pad(url, meta, f"Draw {thing} on the canvas.")
    if isinstance(value, dict) and value.get("model") == url and value.get("error"):
        st.session_state[FAILED] = {**st.session_state.get(FAILED, {}), url: value["error"]}
        st.rerun()  # the whole page, now with the server's canvas
    lifted = predict_pad.model_input(value, url, shape, len(names))
    if lifted is None:
        return
    x, probs = lifted
    mine = int(predict(model, x[None])[0].argmax())  # Keras on the same input: the class the server's parts use
    c1, c2 = st.columns([1, 2])
    seen(c1, x, mine)
    if mine != int(probs.argmax()):  # the ONNX copy and Keras disagree: say so rather than pick one silently
        c2.warning(f"The server's model reads this input as {names[mine]}, the browser's copy as "
                   f"{names[int(probs.argmax())]}.")
    with c2:
        fixes.add_controls(run.dataset, x, names, mine)
    show_activations(x)


def server_predict(mode: str) -> None:
    """The canvas, the uploader or the camera on the left; on the right the server's prediction, bars and all."""
    left, right = st.columns([1, 1], gap="large")
    with left:
        image = server_canvas() if mode == "Draw" else photo(mode)
        if own and mode == "Draw" and image is not None:
            from core.data.uploads import canvas_image
            image = canvas_image(image)  # the canvas's black, as My data stores drawings
    with right:
        if image is None:
            st.info({"Draw": f"Draw {thing} on the canvas.", "Upload": "Upload an image to classify it.",
                     "Camera": "Take a photo to classify it."}[mode])
            return
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
            seen(c1, out["input"], int(out["probs"].argmax()))
            c2.plotly_chart(charts.confidence_bars(out["probs"], names), key="predict_bars")
            show_activations(out["input"])
            fixes.add_controls(run.dataset, out["input"], names, int(out["probs"].argmax()))


def pad_url() -> str | None:
    """Where the pad loads the model from; None, with one line saying why, when the server classifies drawings."""
    if st.query_params.get("predict") == ON_SERVER:
        url, why = None, "asked for by the page's address (?predict=server)"
    else:
        url, why = predict_pad.model_url(run)
    failed = st.session_state.get(FAILED, {})
    if url in failed:
        url, why = None, f"this browser could not run the model ({failed[url]})"
    if url is None:
        st.caption(f"Predictions run on the server: {why}.")
    return url


modes = ["Draw", "Upload", "Camera"] if grayscale or own else ["Upload", "Camera"]
if st.session_state.get("predict_mode") not in modes:  # a choice made for another model, e.g. Draw
    st.session_state.pop("predict_mode", None)
if "Draw" not in modes:
    st.info(f"This model reads {shape[0]}×{shape[1]} colour photos, so there is no drawing canvas "
            "(drawing is for 28×28 grayscale models such as MNIST): upload a photo or take one instead.")
mode = st.radio("Input", modes, horizontal=True, key="predict_mode")
url = pad_url() if mode == "Draw" else None
if url is not None:
    browser_draw(url)
else:
    server_predict(mode)
