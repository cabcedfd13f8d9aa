"""An own dataset through the pretrained backbone, before any training (core.analysis.data_map): its map,
duplicate pairs and suspects, cached per dataset version so adding or deleting an image looks again."""
from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable

import numpy as np
import streamlit as st

from core.analysis import data_map
from core.analysis.embedding import PROJECTIONS
from core.data import fixes as core_fixes
from core.data.registry import item_hashes, item_keys
from core.data.streaming import take
from core.model.efficientnet_lite import BackboneUnavailable
from ui import charts, inside_charts, map_hover
from ui import fixes as ui_fixes

SHOW_PAIRS = 12
SHOW_SUSPECTS = 12
COLOR_BY = ("class", "train / test", "suspects")
SUSPECT_COLORS = {"looks fine": charts.GREY, "possibly mislabelled": charts.RED, "odd one out": charts.BLUE}


def version(ds) -> str:
    """Who the dataset's images are and their labels: any added, deleted or moved image changes it."""
    h = hashlib.blake2b(digest_size=8)
    for split in ("train", "test"):
        hashes = item_hashes(ds, split)
        h.update("\n".join(item_keys(ds, split)).encode() + b"\0" + "\n".join(hashes if hashes is not None else
                                                                             []).encode())
    h.update(np.ascontiguousarray(np.concatenate([ds.y_train, ds.y_test])).data)
    return h.hexdigest()


@st.cache_data(max_entries=4, show_spinner="Looking at every image through the pretrained backbone…")
def _look(name: str, version: str, _ds) -> data_map.DataMap:
    return data_map.look(_ds)


@st.cache_data(max_entries=8, show_spinner="Projecting to 2-D…")
def _xy(name: str, version: str, method: str, _ds) -> np.ndarray:
    return _look(name, version, _ds).xy(method)


def look(ds, ver: str) -> data_map.DataMap | None:
    """The dataset's DataMap (`ver`: its version()), or None with one line on the page where the backbone can't be
    had."""
    ok, line = data_map.available()
    if ok:
        try:
            return _look(ds.name, ver, ds)
        except BackboneUnavailable as e:
            line = str(e)
    st.info(f"The pretrained backbone is not available here, so there is no map before training: {line}",
            icon=":material/info:")
    return None


def fixed(ds):
    """The dataset as its fix overlay leaves it (relabels applied, excluded images gone, added ones in): what
    training with fixes sees, so a suspect fixed here is no longer one. The originals stay untouched."""
    log, lines = ui_fixes.readable(ds.name)
    if not lines:  # nothing to apply (or an unreadable runs folder): not a copy of every image at each rerun
        return ds
    prep = core_fixes.apply(ds, log)
    out, keep = prep.dataset, prep.test_keep
    if keep.all():
        return out
    return dataclasses.replace(out, x_test=take(out.x_test, keep), y_test=out.y_test[keep],
                               **{f: getattr(out, f)[keep] for f in ("test_files", "test_hashes")
                                  if getattr(out, f) is not None})


def image(ds, i: int) -> np.ndarray:
    """Image i of the DataMap's order: the training images, then the test images."""
    n = len(ds.y_train)
    return ds.x_train[i] if i < n else ds.x_test[i - n]


class _AllImages:
    """The training then the test images, read by slices as the hover atlas asks (a streamed set stays on disk)."""

    def __init__(self, ds):
        self.ds, self.n = ds, len(ds.y_train)
        self.shape = (self.n + len(ds.y_test), *ds.x_train.shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.stack([image(self.ds, i) for i in range(*rows.indices(len(self)))])


def show(ds, prefix: str, on_delete: Callable[[str], None] | None = None) -> None:
    """The map (coloured by class, split or suspicion; hover shows the image), the duplicate pairs and the
    suspects (each with a relabel or an exclude in the fix overlay), with a delete button for the second image of
    each pair when `on_delete` is given. All of it as the dataset's fixes leave it."""
    ds = fixed(ds)
    ver = version(ds)
    found = look(ds, ver)
    if found is None:
        return
    names = found.class_names
    st.caption(f"{len(found.files):,} images (train and test) through ImageNet EfficientNet-Lite0 at "
               f"{found.side}×{found.side}: {found.computed:,} computed now, the rest from the feature cache "
               "that training with the pretrained architecture reuses.")
    method_col, color_col = st.columns(2)
    methods = [m for m, p in PROJECTIONS.items() if p.available()]
    method = method_col.radio("Projection", methods, horizontal=True, key=f"{prefix}_method",
                              format_func=lambda m: PROJECTIONS[m].title)
    by = color_col.radio("Colour by", COLOR_BY, horizontal=True, key=f"{prefix}_color")
    xy = _xy(ds.name, ver, method, ds)
    groups, colors = _groups(found, by), SUSPECT_COLORS if by == "suspects" else None
    hover = [f"{f} · {names[y]} · {s}" for f, y, s in zip(found.files, found.labels, found.splits)]
    key = f"{prefix}_map_{hashlib.sha1(repr((ver, method, by)).encode()).hexdigest()[:10]}"
    st.plotly_chart(inside_charts.embedding_map(xy, groups, hover, colors), key=key)
    map_hover.thumbnails_on_hover(key, ds, None, _AllImages(ds), which=f"all {ver}")
    st.caption(f"Near-duplicates: identical pixels, or features at least {data_map.NEAR_DUPLICATE:.0%} alike "
               f"(cosine). Possibly mislabelled: {data_map.MISLABEL_SHARE:.0%} of its {data_map.NEIGHBOURS} "
               f"nearest images carry one other label. Odd one out: its nearest image is far less alike than "
               f"usual here (robust z below {data_map.ODD_Z:g}).")
    pairs_tab, suspects_tab = st.tabs([f"Duplicate pairs ({len(found.pairs):,})",
                                       f"Suspects ({len(found.suspects):,})"])
    with pairs_tab:
        _pairs(ds, found, prefix, on_delete)
    with suspects_tab:
        _suspects(ds, found, prefix)


def _groups(found: data_map.DataMap, by: str) -> list[tuple[str, np.ndarray]]:
    if by == "class":
        groups = [(str(n), np.flatnonzero(found.labels == k)) for k, n in enumerate(found.class_names)]
    elif by == "train / test":
        groups = [(s, np.flatnonzero(found.splits == s)) for s in ("train", "test")]
    else:
        kind = np.full(len(found.files), "looks fine", dtype=object)
        for s in found.suspects:
            kind[s.index] = s.kind
        groups = [(k, np.flatnonzero(kind == k)) for k in SUSPECT_COLORS]
    return [(name, idx) for name, idx in groups if len(idx)]


def _pairs(ds, found: data_map.DataMap, prefix: str, on_delete) -> None:
    if not found.pairs:
        st.success("No duplicate pairs.", icon=":material/check:")
    names = found.class_names
    for start in range(0, min(SHOW_PAIRS, len(found.pairs)), 3):
        for col, p in zip(st.columns(3), found.pairs[start:start + 3]):
            both = np.concatenate([charts.enlarge(image(ds, p.a), 96), charts.enlarge(image(ds, p.b), 96)], axis=1)
            alike = "identical pixels" if p.exact else f"{p.similarity:.1%} alike"
            col.image(both, caption=f"{p.file_a} ({names[found.labels[p.a]]}) ~ {p.file_b} "
                                    f"({names[found.labels[p.b]]}): {alike}")
            if on_delete and col.button(f"Delete {p.file_b}", key=f"{prefix}_del_{p.file_b}",
                                        icon=":material/delete:", type="tertiary"):
                on_delete(p.file_b)
    if len(found.pairs) > SHOW_PAIRS:
        st.caption(f"… and {len(found.pairs) - SHOW_PAIRS:,} more pairs.")


def _suspects(ds, found: data_map.DataMap, prefix: str) -> None:
    if not found.suspects:
        st.success("No image stands out.", icon=":material/check:")
    n_train = len(ds.y_train)
    cols = st.columns(6)
    for k, s in enumerate(found.suspects[:SHOW_SUSPECTS]):
        split, i = ("train", s.index) if s.index < n_train else ("test", s.index - n_train)
        key, digest = core_fixes.item_ref(ds, split, i)
        with cols[k % 6]:
            st.image(charts.enlarge(image(ds, s.index), 96), width="stretch", caption=f"{s.file}: {s.kind}, {s.why}")
            ui_fixes.quick_controls(ds.name, split, key, s.suggested, found.class_names, "data map", ns=prefix,
                                    digest=digest)
    if len(found.suspects) > SHOW_SUSPECTS:
        st.caption(f"… and {len(found.suspects) - SHOW_SUSPECTS:,} more.")
