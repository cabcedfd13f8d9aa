"""Background training owned by a browser session, with a server-wide cap on concurrent runs."""
from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

import streamlit as st

from core.training import MetricsStore, TrainConfig

JOB_KEY = "training_job"
# Keras hands the GIL back and forth many times a batch. While a page's script holds it (the live chart
# redraws every second), each hand-back waits out CPython's 5 ms switch interval: fitting 2,700
# Fashion-MNIST images took 157 s watched vs 3.9 s unwatched on 2 very busy cores, 8.7 s vs 1.7 s on
# 2 moderately busy ones. At 0.5 ms: 20 s (very busy) and 4.5 s. It only sets how often threads take turns.
SWITCH_INTERVAL_S = 0.0005


def max_concurrent() -> int:
    """How many trainings may run at once: $CLASSIFIER_LAB_MAX_TRAININGS or one per two cores."""
    try:
        return max(1, int(os.environ.get("CLASSIFIER_LAB_MAX_TRAININGS", "")))
    except ValueError:
        return max(1, (os.cpu_count() or 2) // 2)


@st.cache_resource
def _slots() -> threading.Semaphore:
    # One semaphore per server process: extra trainings queue instead of oversubscribing the CPU.
    return threading.BoundedSemaphore(max_concurrent())


@dataclass
class Job:
    """One training: its config, thread, live store, stop flag and outcome."""
    config: TrainConfig
    store: MetricsStore = field(default_factory=MetricsStore)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    run: object = None      # core.runs.Run when done
    error: str | None = None
    started: float = field(default_factory=time.time)

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _target(self, slots: threading.Semaphore) -> None:
        from core.training import train

        if not slots.acquire(blocking=False):
            self.store.update(status="queued")  # only now: the page says another training holds the slot
            while not slots.acquire(timeout=0.5):  # wait for a free slot, but honour Stop meanwhile
                if self.stop.is_set():
                    self.store.update(status="cancelled")
                    return
            self.store.update(status="starting")
        try:
            self.run = train(self.config, store=self.store, stop=self.stop)
        except BaseException as e:  # recorded in the run and shown on the page; the app keeps working
            self.error = self.store.snapshot(since=-1).get("error") or f"{e.__class__.__name__}: {e}"
        finally:
            slots.release()

    def start(self) -> None:
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.thread = threading.Thread(target=self._target, args=(_slots(),), name="training", daemon=True)
        self.thread.start()


def current() -> Job | None:
    """This session's latest training job, running or done."""
    return st.session_state.get(JOB_KEY)


def start(config: TrainConfig) -> Job:
    """Start training in a background thread that belongs to this session."""
    job = Job(config)
    st.session_state[JOB_KEY] = job
    job.start()
    return job
