"""Data: class counts, a sample grid, one image's pixels, and a preview of data augmentation."""
import numpy as np
import streamlit as st

from ui import charts, state

st.title("Data")
ds = state.dataset()
if ds is None:
    st.stop()
names = list(ds.class_names)
st.caption(ds.source)

c1, c2, c3, c4 = st.columns(4)
c1.metric("classes", len(names))
c2.metric("train images", f"{len(ds.y_train):,}")
c3.metric("test images", f"{len(ds.y_test):,}")
c4.metric("image shape", "×".join(map(str, ds.input_shape)))

st.subheader("Images per class")
counts = [np.bincount(y, minlength=len(names)) for y in (ds.y_train, ds.y_test)]
st.plotly_chart(charts.class_counts(names, *counts), key="counts_chart")

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Training samples")
    cols = st.columns(5)
    for i in range(min(25, len(ds.y_train))):
        cols[i % 5].image(charts.enlarge(ds.x_train[i], 96), caption=names[ds.y_train[i]])
with right:
    st.subheader("One image, pixel by pixel")
    i = st.number_input("Training image #", 0, len(ds.y_train) - 1, 0, key="pixel_index")
    st.plotly_chart(charts.pixels(ds.x_train[i]), key="pixel_chart")
    st.caption(f"Label: {names[ds.y_train[i]]}. Models get these raw 0–255 values and rescale them inside.")


@st.cache_data(max_entries=4, show_spinner="Augmenting…")
def augmented(name: str, profile: str, seed: int, copies: int = 4) -> np.ndarray:
    """A few training images through the augmentation layers, `copies` times each."""
    from core.model.architectures import augmentation

    x = np.asarray(ds.x_train[:6], dtype="float32")
    x = x[..., None] if x.ndim == 3 else x
    layer = augmentation(profile, seed)
    rows = [layer(x, training=True).numpy() for _ in range(copies)]
    return np.clip(np.stack(rows, 1), 0, 255).astype("uint8")  # (images, copies, H, W, C)


st.subheader("Data augmentation preview")
st.caption(f"What `cnn_augmented` sees in training for this dataset ({ds.augment} profile): each row is one "
           "image and four random augmentations of it." + (" Digits are never flipped." if ds.augment == "digits"
                                                          else ""))
seed = st.number_input("Augmentation seed", 0, 10**6, 0, key="aug_seed")
grid = augmented(ds.name + ds.source, ds.augment, int(seed))
for k, row in enumerate(grid):
    cols = st.columns(5)
    cols[0].image(charts.enlarge(ds.x_train[k], 96), caption="original")
    for j, img in enumerate(row):
        cols[j + 1].image(charts.enlarge(img.squeeze(-1) if img.shape[-1] == 1 else img, 96), caption=f"#{j + 1}")
