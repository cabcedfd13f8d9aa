"""Learning-rate range test (Smith 2015, "Cyclical Learning Rates"): a short run with the rate rising
exponentially batch by batch, the loss recorded at every rate, and the rate it suggests."""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from core import InvalidValue
from core.model import recipes
from core.store import runs

RESULT_FILE = "lr_find.json"
MIN_LR, MAX_LR, STEPS = 1e-6, 1.0, 200  # 6 decades in 200 batches: ×1.07 a batch
DIVERGE = 4.0      # the test ends once the smoothed loss exceeds 4× its lowest value (it has blown up)
LIVE_BETA = 0.9    # the live divergence check's moving average (about 10 batches)
WINDOW = 0.05      # the suggestion's centred smoothing window, as a fraction of the batches (≥ 5 batches)


def rate(step: int, steps: int = STEPS, lo: float = MIN_LR, hi: float = MAX_LR) -> float:
    """The learning rate of batch `step` (0-based): lo at the first batch, hi at the last, geometric between."""
    return lo * (hi / lo) ** (step / max(1, steps - 1))


def smooth(losses, window: int) -> np.ndarray:
    """A centred moving average (shorter at the ends): no lag, so a feature stays at its own rate."""
    x = np.asarray(losses, dtype=float)
    if len(x) == 0:
        return x
    w = min(int(window) | 1, len(x) if len(x) % 2 else len(x) - 1)  # odd, and no longer than the series
    kernel = np.ones(w)
    return np.convolve(x, kernel, "same") / np.convolve(np.ones_like(x), kernel, "same")


def suggest(lrs, losses) -> dict:
    """The suggested rate: where the smoothed loss falls fastest per decade of rate, before its minimum.

    1. Smooth the per-batch losses with a centred moving average over 5 % of the batches (at least 5).
    2. Keep the batches up to the smoothed minimum: past it the loss climbs towards divergence.
    3. Take d(smoothed loss)/d(log10 rate) there and suggest the rate where it is most negative, i.e. the
       steepest descent. If the minimum comes in the first few batches (no descent to speak of), suggest
       a tenth of the rate at the minimum instead.
    """
    lrs, losses = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    finite = np.isfinite(losses)
    n = int(np.argmin(finite)) if not finite.all() else len(losses)  # up to the first NaN or inf
    lrs, losses = lrs[:n], losses[:n]
    if n < 3:
        raise InvalidValue("the range test recorded fewer than 3 usable batches: use more training samples")
    s = smooth(losses, max(5, round(WINDOW * n)))
    low = int(np.argmin(s))
    if low < 3:
        index, how = low, "minimum / 10"
        lr = float(lrs[low] / 10)
    else:
        grad = np.gradient(s[: low + 1], np.log10(lrs[: low + 1]))
        index, how = int(np.argmin(grad)), "steepest descent"
        lr = float(lrs[index])
    return {"suggested_lr": lr, "suggested_index": index, "method": how, "min_loss_lr": float(lrs[low]),
            "smoothed": [round(float(v), 5) for v in s]}


def callback(steps: int, n_train: int, batch_size: int, lo: float = MIN_LR, hi: float = MAX_LR):
    """A Keras callback running the range test over `steps` batches; its .lrs and .losses hold the record."""
    import keras

    class RangeTest(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.lrs, self.losses, self.step = [], [], 0
            self._best, self._avg, self._seen = math.inf, 0.0, (0, 0.0)
            self.diverged = False

        def on_epoch_begin(self, epoch, logs=None):
            self._seen = (0, 0.0)  # Keras's running loss mean starts again each epoch

        def on_train_batch_begin(self, batch, logs=None):
            lr = rate(self.step, steps, lo, hi)
            self.model.optimizer.learning_rate.assign(lr)
            self.lrs.append(lr)

        def on_train_batch_end(self, batch, logs=None):
            # Keras logs the epoch's running mean weighted by batch size: recover this batch's own loss
            mean = float((logs or {}).get("loss", math.nan))
            n0, total0 = self._seen
            n1 = min((batch + 1) * batch_size, n_train)
            loss = (mean * n1 - total0) / max(1, n1 - n0)
            self._seen = (n1, mean * n1)
            self.losses.append(loss)
            self.step += 1
            self._avg = LIVE_BETA * self._avg + (1 - LIVE_BETA) * loss
            smoothed = self._avg / (1 - LIVE_BETA ** self.step)
            self._best = min(self._best, smoothed)
            self.diverged = not math.isfinite(loss) or (self.step > 10 and smoothed > DIVERGE * self._best)
            if self.diverged or self.step >= steps:
                self.model.stop_training = True

    return RangeTest()


def range_test(model, x, y, cfg, run_dir: Path, callbacks=(), steps: int = STEPS) -> dict:
    """Run the test on a compiled model (its optimizer's rate is overwritten), write lr_find.json to the run
    folder; returns what run.json should say (the suggested rate, batches, seconds)."""
    # one epoch of `steps` batches drawn as training draws them (recipes.fit_inputs): a set smaller than that is
    # repeated, reshuffled each pass, not run as one-batch epochs (full-batch steps training never takes, each
    # with Keras's per-epoch cost: 30 photos on the pretrained head took 5.6 s that way, 0.8 s so)
    per_pass = math.ceil(len(y) / cfg.batch_size)
    test = callback(steps, len(y) if per_pass >= steps else steps * cfg.batch_size, cfg.batch_size)
    t0 = time.perf_counter()
    model.fit(**recipes.fit_inputs(x, y, cfg.batch_size, max(steps, per_pass), cfg.seed), epochs=1, verbose=0,
              callbacks=[*callbacks, test])
    seconds = round(time.perf_counter() - t0, 2)
    lrs, losses = test.lrs[: len(test.losses)], test.losses
    found = suggest(lrs, losses)
    record = {"lrs": lrs, "losses": [round(v, 5) if math.isfinite(v) else None for v in losses], **found,
              "min_lr": MIN_LR, "max_lr": MAX_LR, "steps": steps, "diverged": test.diverged,
              "batch_size": cfg.batch_size, "seconds": seconds}
    runs.write_json_atomic(Path(run_dir) / RESULT_FILE, record)
    return {"suggested_lr": found["suggested_lr"], "lr_find_batches": len(losses), "fit_seconds": seconds}


def load(run_dir: Path) -> dict | None:
    """A run's range-test record (lrs, losses, smoothed, suggested_lr…), or None."""
    record = runs.read_json(Path(run_dir) / RESULT_FILE)
    return record if isinstance(record, dict) and record.get("lrs") else None
