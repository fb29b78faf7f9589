"""Every default a user meets, in one place (the CLI, the library and the docs read them here).

Kept free of heavy imports so `vadctl --help` stays fast.
"""

from __future__ import annotations

import os
from pathlib import Path

STORE = Path("stores/default.zarr")  # relative to the working directory, like any CLI path
STORE_ENV = "VADCTL_STORE"
MODELS_DIR = Path("stores/models")
SCORES = Path("stores/scores.parquet")
INFER_SCORES = Path("stores/infer/scores.parquet")
INFER_SPLIT = "infer"  # where `vadctl infer` keeps new files' features, apart from train and test

FEATURES = ("frames", "flow", "regions", "velocity")  # what `vadctl extract` computes by default
WINDOW = 32  # frames decoded at a time (bounds memory)
CLIP_LENGTH, CLIP_STRIDE, FRAME_STEP = 16, 8, 1
WAIT_SECONDS = 3600.0  # how long extract waits for videos another run holds

THRESHOLD_RULE = "sigma:3"  # μ+3σ of held-out normal frames (the PLOVAD-based system's rule)
VALIDATION_FRACTION = 0.2
TRAIN_SPLIT, TEST_SPLIT = "train", "test"


def store_path(path: Path | str | None = None) -> Path:
    """The store a command works on: the one named, else $VADCTL_STORE, else stores/default.zarr."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(STORE_ENV) or STORE)


def model_path(model: str) -> Path:
    return MODELS_DIR / f"{model}.safetensors"
