"""Train-page settings in the URL: parse query parameters into widget values and back."""
from __future__ import annotations

import math

from core.data.registry import dataset_names
from core.model.architectures import ARCHITECTURES
from core.model.recipes import default_arch  # noqa: F401  (the Train page's starting architecture)
from core.train.trainer import OPTIMIZERS, TrainConfig

BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512]
# 1-(2)-3-5 steps a decade from 1e-5 up: the range test's suggestion snaps to one within a factor of ~1.3
LEARNING_RATES = [1e-5, 3e-5, 1e-4, 2e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2, 1e-1]
# query parameter -> (widget key, parser returning a valid value or raising ValueError)
FIELDS = {
    "dataset": ("train_dataset", lambda v: _choice(v, dataset_names())),
    "arch": ("train_arch", lambda v: _choice(v, list(ARCHITECTURES))),
    "epochs": ("train_epochs", lambda v: _int(v, 1, 200)),
    "batch": ("train_batch", lambda v: _choice(int(v), BATCH_SIZES)),
    "lr": ("train_lr", lambda v: _choice(float(v), LEARNING_RATES)),
    "opt": ("train_opt", lambda v: _choice(v, list(OPTIMIZERS))),
    "val": ("train_val", lambda v: round(_float(v, 0.0, 0.5) / 0.05) * 0.05),
    "seed": ("train_seed", lambda v: _int(v, 0, 2**31 - 1)),
    "samples": ("train_subset", lambda v: _int(v, 0, 10**7)),
    "patience": ("train_patience", lambda v: _int(v, 0, 100)),
}


def _choice(value, options):
    if value not in options:
        raise ValueError(f"{value!r} is not one of {options}")
    return value


def _int(value, lo, hi) -> int:
    n = int(value)
    if not lo <= n <= hi:
        raise ValueError(f"{n} is outside {lo}..{hi}")
    return n


def _float(value, lo, hi) -> float:
    x = float(value)
    if not lo <= x <= hi:
        raise ValueError(f"{x} is outside {lo}..{hi}")
    return x


def nearest_rate(lr: float) -> float:
    """The Train form's learning-rate option closest to `lr` on a log scale."""
    return min(LEARNING_RATES, key=lambda option: abs(math.log(option / lr)))


def arch_defaults(arch: str) -> dict:
    """Widget values for an architecture's preset hyperparameters."""
    d = {"epochs": 5, "batch_size": 32, "learning_rate": 1e-3, "optimizer": "adam", **ARCHITECTURES[arch].defaults}
    return {"train_epochs": d["epochs"], "train_batch": d["batch_size"], "train_lr": d["learning_rate"],
            "train_opt": d["optimizer"]}


def from_query(params: dict) -> tuple[dict, list[str]]:
    """Widget values from query parameters, and a note for each parameter that was ignored."""
    values, ignored = {}, []
    for name, raw in params.items():
        if name not in FIELDS:
            continue
        key, parse = FIELDS[name]
        try:
            values[key] = parse(raw)
        except (TypeError, ValueError) as e:
            ignored.append(f"{name}={raw} ({e})")
    return values, ignored


def to_query(cfg: TrainConfig) -> dict[str, str]:
    """The query parameters that reproduce a configuration."""
    return {"dataset": cfg.dataset, "arch": cfg.arch, "epochs": str(cfg.epochs), "batch": str(cfg.batch_size),
            "lr": f"{cfg.learning_rate:g}", "opt": cfg.optimizer, "val": f"{cfg.validation_split:g}",
            "seed": str(cfg.seed), "samples": str(cfg.max_train_samples or 0),
            "patience": str(cfg.early_stopping_patience or 0)}
