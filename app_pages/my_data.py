"""My data: make an image dataset of your own — upload, draw or photograph images per class."""
import streamlit as st

from core.data import owndata, registry, uploads
from ui import data_map, state

NEW = "+ New dataset"  # plain text: a machine without an emoji font (Debian's Chromium) drew no ➕
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif"]
THUMBS = 48  # thumbnails shown per class (the rest are counted)

st.title("My data")
st.caption("Make a dataset of your own, Teachable-Machine style: name it, add classes, and give each class "
           "images — upload files, a folder or a .zip, draw them, or take photos. It then appears beside MNIST "
           "in the sidebar and on the Train page (pick the **Auto** architecture).")
st.session_state.setdefault("md_gen", 0)  # bumped after each import: fresh, empty uploaders and canvas
gen = st.session_state["md_gen"]


def done(report: uploads.Report | None = None, message: str | None = None) -> None:
    """Keep the outcome for the next run, reset the inputs, redraw."""
    st.session_state["md_report"] = (report, message)
    st.session_state["md_gen"] += 1
    state.status.clear()  # the sidebar's availability line counts images
    st.rerun()


def show_report() -> None:
    report, message = st.session_state.pop("md_report", (None, None))
    if message:
        st.success(message)
    if report is not None:
        (st.success if report.total else st.info)(report.summary().capitalize() + ".")
        if report.problems:
            st.warning("\n".join(f"- {line}" for line in report.problems))


def attempt(fn, *args):
    """Run an owndata operation; its refusal is one line on the page."""
    try:
        return fn(*args)
    except registry.OwnDataError as e:
        st.error(state.sentence(str(e)))
        return None


def new_dataset() -> None:
    with st.form("md_new", clear_on_submit=True):
        text = st.text_input("Name of the new dataset", placeholder="shapes", key="md_new_name")
        if st.form_submit_button("Create", type="primary", icon=":material/add:") and text:
            name = attempt(owndata.create, text)
            if name:
                st.session_state["md_pending"] = name
                done(message=f"Dataset {name} created: add classes and images below.")


def import_zip(name: str) -> None:
    upload = st.file_uploader("Import a .zip of class subfolders (each folder becomes a class)", type=["zip"],
                              key=f"md_zip_{gen}")
    if upload is not None:
        done(uploads.add_zip(name, upload, label=upload.name))


def add_images(name: str, cls: str) -> None:
    """Upload files, a folder or a zip into this class, draw, or take a photo."""
    mode = st.radio("Add images by", ["Upload", "Draw", "Camera"], horizontal=True, key="md_mode")
    if mode == "Upload":  # one mode drawn at a time: the camera asks for permission only when chosen
        files = st.file_uploader(f"Images or a .zip for {cls}", type=UPLOAD_TYPES + ["zip"],
                                 accept_multiple_files=True, key=f"md_files_{gen}")
        folder = st.file_uploader(f"A whole folder of images for {cls}", type=UPLOAD_TYPES,
                                  accept_multiple_files="directory", key=f"md_dir_{gen}")
        given = (files or []) + (folder or [])
        if given:
            done(uploads.add_files(name, cls, [(f.name, f.getvalue()) for f in given]))
    elif mode == "Draw":
        from streamlit_drawable_canvas import st_canvas  # importing it outside a running app raises

        width = st.slider("Stroke width", 6, 40, 20, key="md_stroke")
        result = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000", height=280,
                           width=280, drawing_mode="freedraw", return_image_data=True, key=f"md_canvas_{gen}")
        image = getattr(result, "image_data", None)
        drawn = image is not None and image[..., 3].max() > 0
        if st.button("Add drawing", icon=":material/add_photo_alternate:", disabled=not drawn, key="md_add_drawing"):
            if attempt(uploads.add_drawing, name, cls, image):
                done(message=f"Drawing added to {cls}.")
    else:
        shot = st.camera_input(f"Take a photo for {cls}", key=f"md_camera_{gen}")
        if shot is not None:
            done(uploads.add_files(name, cls, [("photo.jpg", shot.getvalue())]))


@st.cache_data(max_entries=1024, show_spinner=False)
def thumbnail(path: str, mtime: float) -> bytes:
    return owndata.thumbnail(path)


def gallery(name: str, cls: str) -> None:
    paths = owndata.images(name, cls)
    cols = st.columns(8)
    for i, path in enumerate(paths[:THUMBS]):
        with cols[i % 8]:
            st.image(thumbnail(str(path), path.stat().st_mtime), caption=path.name, width=80)
            if st.button("Delete", key=f"md_del_{cls}_{path.name}", icon=":material/delete:", type="tertiary"):
                if attempt(owndata.delete_image, name, cls, path.name):
                    done(message=f"Deleted {path.name} from {cls}.")
    if len(paths) > THUMBS:
        st.caption(f"… and {len(paths) - THUMBS:,} more.")


def delete_file(name: str, file: str) -> None:
    """Delete an image named by its path in the dataset ("class/file.png"), e.g. one of a duplicate pair."""
    cls, filename = file.split("/", 1)
    if attempt(owndata.delete_image, name, cls, filename):
        done(message=f"Deleted {file}.")


def confirm_delete(what: str, key: str, fn, *args) -> None:
    """A delete button behind a confirmation tick."""
    sure = st.checkbox(f"Yes, delete {what}", key=f"{key}_sure")
    if st.button(f"Delete {what}", key=key, disabled=not sure, icon=":material/delete_forever:"):
        if attempt(fn, *args):
            st.session_state.pop(f"{key}_sure", None)
            done(message=f"Deleted {what}.")


show_report()
names = registry.list_datasets()
pending = st.session_state.pop("md_pending", None)
if pending in names:
    st.session_state["md_dataset"] = pending
if st.session_state.get("md_dataset") not in names + [NEW]:
    st.session_state["md_dataset"] = names[0] if names else NEW
name = st.selectbox("Dataset", names + [NEW], key="md_dataset")
if name == NEW:
    new_dataset()
    st.stop()

counts = owndata.class_counts(name)
ok, line = owndata.usable(name)
(st.caption if ok else st.info)(line + ("" if ok else ": add classes with images below."))
if ok and st.button("Use this dataset (sidebar, Train, Predict)", icon=":material/check:"):
    state.set_dataset(name)
    st.switch_page("app_pages/train.py")
import_zip(name)

with st.form("md_add_class", clear_on_submit=True):
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    text = c1.text_input("New class", placeholder="circle", key="md_new_class")
    if c2.form_submit_button("Add class", icon=":material/add:") and text:
        cls = attempt(owndata.add_class, name, text)
        if cls:
            st.session_state["md_class_pending"] = cls
            done(message=f"Class {cls} added: give it images.")

if counts:
    pending = st.session_state.pop("md_class_pending", None)
    if pending in counts:
        st.session_state["md_class"] = pending
    if st.session_state.get("md_class") not in counts:
        st.session_state["md_class"] = next(iter(counts))
    # the labels carry no counts: changing labels would make a new widget and lose the choice
    cls = st.radio("Class", list(counts), key="md_class", horizontal=True)
    st.caption(" · ".join(f"{c}: {n} image(s)" for c, n in counts.items()))
    add_images(name, cls)
    st.subheader(f"{cls} · {counts[cls]} image(s)")
    gallery(name, cls)
    with st.expander(f"Delete class {cls}"):
        confirm_delete(f"class {cls} and its {counts[cls]} image(s)", "md_delete_class", owndata.delete_class, name,
                       cls)
if ok:
    with st.expander("Look at your data", icon=":material/scatter_plot:"):
        st.caption("Every image through the pretrained ImageNet backbone, before any training: a map coloured by "
                   "class, near-duplicate pairs, and images that look mislabelled or out of place. The first look "
                   "costs about 12 ms an image; training with the pretrained architecture then reuses its features.")
        looked = st.session_state.setdefault("md_looked", set())
        if name in looked or st.button("Look", key="md_look", icon=":material/visibility:"):
            looked.add(name)
            ds = state.dataset(name)
            if ds is not None:
                data_map.show(ds, "md_look", on_delete=lambda file: delete_file(name, file))
with st.expander(f"Delete dataset {name}"):
    confirm_delete(f"dataset {name} and all its images", "md_delete_dataset", owndata.delete_dataset, name)
