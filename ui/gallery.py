"""A paged gallery of test images whose Details open one large, with confidence bars and "Why?"
(the Mistakes page's, shared with the embedding map)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from ui import charts, fixes, state

PAGE_SIZE = 24


@dataclass
class Gallery:
    """Test images of one run and dataset; `prefix` keeps each page's session keys apart."""
    run: object
    ds: object
    probs: np.ndarray
    prefix: str
    numbered: bool = False  # captions start with the test index
    view: str = "mistakes"  # where a fix was made, as the Fixes page lists it

    def __post_init__(self):
        self.y, self.pred, self.names = np.asarray(self.ds.y_test), self.probs.argmax(1), list(self.ds.class_names)

    def key(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def caption(self, i: int) -> str:
        text = f"{fixes.file_caption(self.ds, 'test', i)}Label: {self.names[self.y[i]]} | " \
               f"Predict: {self.names[self.pred[i]]} ({self.probs[i, self.pred[i]]:.0%})"
        return f"#{i} {text}" if self.numbered and not self.ds.has_files else text  # own images: by file

    def detail_panel(self, i: int) -> None:
        """One test image large, with its confidence in every class."""
        names, pred, y = self.names, self.pred, self.y
        with st.container(border=True):
            d1, d2 = st.columns([1, 2])
            d1.image(charts.enlarge(self.ds.x_test[i], 224), caption=self.caption(i))
            if d1.toggle("Why?", key="why_detail", help="Highlight the pixels that drove the prediction"):
                overlay, how = charts.why(state.model(self.run), np.asarray(self.ds.x_test[i]), int(pred[i]), 224)
                d1.image(overlay, caption=f"{how} for '{names[pred[i]]}'")
            d1.button("Close", key=self.key("close"), on_click=st.session_state.pop, args=(self.key("detail"), None))
            d2.plotly_chart(charts.confidence_bars(self.probs[i], names, int(pred[i]), int(y[i])), key="detail_bars")
            which = self.ds.test_files[i] if self.ds.has_files else f"#{i}"
            d2.caption(f"Test image {which}: red = predicted class, blue = true class.")
            with d2:
                fixes.fix_controls(self.ds, "test", i, int(y[i]), self.view, suggested=int(pred[i]), ns=self.prefix)

    def opened(self) -> int | None:
        """The test index whose details are open, if it was opened on this model."""
        opened = st.session_state.get(self.key("detail"))
        ok = isinstance(opened, tuple) and opened[0] == str(self.run.path) and opened[1] < len(self.y)
        return opened[1] if ok else None

    def show(self, idx: np.ndarray, view: tuple) -> None:
        """Page through `idx` (a new `view`, i.e. filter, starts at page 1), six images a row."""
        shown, detail = [], self.opened()
        if len(idx):
            pages = (len(idx) - 1) // PAGE_SIZE + 1
            page_key, filter_key = self.key("page"), self.key("filter")
            view = (str(self.run.path), *view)
            if st.session_state.get(filter_key) != view or not 1 <= st.session_state.get(page_key, 1) <= pages:
                st.session_state[filter_key], st.session_state[page_key] = view, 1
            page = st.columns(4)[0].number_input(f"Page (of {pages})", 1, pages, key=page_key) if pages > 1 else 1
            st.caption(f"{len(idx):,} images · showing {PAGE_SIZE * (page - 1) + 1}–"
                       f"{min(PAGE_SIZE * page, len(idx))}")
            shown = [int(i) for i in idx[PAGE_SIZE * (page - 1): PAGE_SIZE * page]]
        if detail is not None and detail not in shown:
            self.detail_panel(detail)  # opened on another page or filter: above the gallery
        for start in range(0, len(shown), 6):
            row = shown[start:start + 6]
            cols = st.columns(6)  # a row of columns per 6 images, so rows stay aligned when captions wrap
            for col, i in zip(cols, row):
                with col:
                    st.image(charts.enlarge(self.ds.x_test[i], 112), caption=self.caption(i), width="stretch")
                    st.button("Details", key=self.key(f"open_{i}"), on_click=st.session_state.__setitem__,
                              args=(self.key("detail"), (str(self.run.path), i)))
            if detail in row:
                self.detail_panel(detail)  # right under the row that was clicked, where the user is looking
