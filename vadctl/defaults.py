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

# what `vadctl extract` computes by default: what the default models read (frames: FFP and the
# scene-aware model; velocity and hog_regions on regions: AI-VAD; motion: FUVAS)
FEATURES = ("frames", "flow", "regions", "velocity", "hog_regions", "motion")
WINDOW = 32  # frames decoded at a time (bounds memory)
CLIP_LENGTH, CLIP_STRIDE, FRAME_STEP = 16, 8, 1
WAIT_SECONDS = 3600.0  # how long extract waits for videos another run holds
# Worker processes for extract (and score): 1, not the number of cores. One process already keeps
# ~1.35 cores busy (decoding on a second thread, flow on two), each worker holds its own copy of
# every weighted model (CLIP ViT-L/14 is ~1.7 GB in float32, plus a CUDA context per GPU worker),
# and the batch jobs this tool runs share machines with others: using every core is a choice
# (`--workers N`), not a surprise.
WORKERS = 1
# Parallel runs cut videos longer than this into segments (5 minutes at 30 fps), rounded up to the
# store's chunk boundaries; a 10-hour video then keeps every worker busy instead of one.
SEGMENT_FRAMES = 9000
# A video failed by the machine rather than by itself (a full disk, an I/O error, a lost worker or
# Ray node) is extracted again by the next runs, up to this many failed attempts in a row; then
# it stays failed until `--retry-failed`.
TRANSIENT_ATTEMPTS = 3

# μ+3σ of held-out normal frames (the PLOVAD-based system's rule), μ and σ read robustly: median + 3·σ̂,
# σ̂ = q84.13 − median (vadctl.models.calibration)
THRESHOLD_RULE = "robust:3"
VALIDATION_FRACTION = 0.2
TRAIN_SPLIT, TEST_SPLIT = "train", "test"

# events (vadctl/events.py): runs of anomalous frames merged across gaps shorter than EVENT_MIN_GAP
# frames, kept when at least EVENT_MIN_LEN frames long
EVENT_MIN_LEN, EVENT_MIN_GAP = 4, 8
PART_VIDEOS = 100  # `vadctl run`: videos per committed part (bounds memory and the work a crash redoes)


def store_path(path: Path | str | None = None) -> Path:
    """The store a command works on: the one named, else $VADCTL_STORE, else stores/default.zarr."""
    if path is not None:
        return Path(path)
    return Path(os.environ.get(STORE_ENV) or STORE)


def model_path(model: str) -> Path:
    return MODELS_DIR / f"{model}.safetensors"
