"""FFP on UCSD Ped2 at a CPU-sized configuration, beside the trivial "predict the last frame" baseline.

Steps, all in this run (training can be resumed from its checkpoint with --resume):
  extract  `frames` (256×256 gray) of train and test into the store, if not there yet
  fit      `vadctl fit --model ffp` via the library (held-out videos calibrate μ+3σ), timed
  score    the test split; micro/macro AUROC of
             score         −PSNR, normalised with training statistics only (held-out μ, σ)
             score_minmax  FFP's published per-video min–max of PSNR (uses each test video's range)
  baseline the same two scores when the "prediction" is simply the previous frame, at the same
           resolution: what min–max normalisation gives to a predictor that learnt nothing
Writes benchmarks/out/ped2_ffp/results.json. No test label is used for any choice here.

`--select 1e-4,1e-3 --steps N` is the label-free choice of the generator's learning rate: each
candidate (discriminator's rate 1/10 of it, as published) trains N steps on the same 13 videos,
and the mean PSNR of its predictions on the 3 held-out *training* videos is printed beside the
PSNR of repeating the last frame there (a predictor that learnt motion beats it; one that learnt
to copy does not). Nothing of the test split is read in this mode.
Usage:
  python benchmarks/ped2_ffp.py [--data ../shared/data/ped2] [--steps 2000] [--resume] [--skip-fit]
  python benchmarks/ped2_ffp.py --select 1e-4,1e-3 --steps 600
  python benchmarks/ped2_ffp.py --lr-g 1e-3 --steps 100000 --minutes 30 --threads 1   (a 30-minute budget)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from vadctl.common.progress import Progress

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"
OUT = HERE / "out" / "ped2_ffp"


class PrintProgress(Progress):
    """Training progress as log lines (this script is meant to run in the background)."""

    def __init__(self, every: int = 50):
        self.every = every

    def train_started(self, label, total, done):
        self.total, self.started, self.first = total, time.perf_counter(), done
        print(f"{label}: steps {done} → {total}", flush=True)

    def train_step(self, step, losses):
        if step % self.every == 0 or step == self.total:
            rate = (step - self.first) / max(time.perf_counter() - self.started, 1e-9)
            text = " ".join(f"{k}={v:.4f}" for k, v in losses.items())
            print(f"step {step}/{self.total} {rate:.2f} steps/s {text}", flush=True)

    def note(self, text):
        print(text, flush=True)


def ensure_frames(data: Path, store_path: Path) -> None:
    from vadctl import api

    for split in ("train", "test"):
        report = api.extract([data / split], store_path, split, ["frames"])
        print(f"extract {split}: {report.count('extracted')} extracted, {report.count('up to date')} up to date")


def evaluate_columns(frames, labels_path: Path, columns) -> dict:
    from vadctl.review.metrics import align, evaluate, read_labels

    joined, _ = align(frames, read_labels(labels_path))
    out = {}
    for column in columns:
        metrics = evaluate(joined, column)
        out[column] = {"micro_auroc": metrics.micro_auroc, "macro_auroc": metrics.macro_auroc}
    return out


def last_frame_baseline(store, resolution: int):
    """−PSNR and per-video min–max when frame t is 'predicted' as frame t-1 (at the model's size)."""
    import polars as pl

    from vadctl.models.ffp import Ffp

    model = Ffp(resolution=resolution)
    model.select_features(store, "test")
    parts = []
    for record in store.videos("test"):
        frames = model._frames(store, "test", record.video_id).astype(np.float64) / 255.0
        mse = ((frames[1:] - frames[:-1]) ** 2).reshape(len(frames) - 1, -1).mean(axis=1)
        psnr = 10 * np.log10(1 / np.maximum(mse, 1e-10))
        psnr = np.concatenate([psnr[:1], psnr])  # frame 0 takes frame 1's value
        span = psnr.max() - psnr.min()
        parts.append(
            pl.DataFrame(
                {
                    "video": [record.video_id] * len(psnr),
                    "frame": np.arange(len(psnr)),
                    "score": -psnr,
                    "score_minmax": 1 - (psnr - psnr.min()) / span,
                }
            )
        )
    return pl.concat(parts)


def last_frame_psnr(store, videos, resolution: int) -> float:
    """Mean PSNR of predicting each frame as the previous one, over these train videos."""
    from vadctl.models.ffp import Ffp

    model = Ffp(resolution=resolution)
    model.select_features(store, "train")
    values = []
    for video in videos:
        frames = model._frames(store, "train", video).astype(np.float64) / 255.0
        mse = ((frames[1:] - frames[:-1]) ** 2).reshape(len(frames) - 1, -1).mean(axis=1)
        values.append(10 * np.log10(1 / np.maximum(mse[model.history - 1 :], 1e-10)))
    return float(np.concatenate(values).mean())


def select(store, params: dict, rates: list[float]) -> dict:
    """Held-out training PSNR of each generator learning rate (no test data is read)."""
    from vadctl.models.fit import fit_model
    from vadctl.models.training import TrainOptions

    rows = []
    for lr in rates:
        started = time.perf_counter()
        options = TrainOptions(progress=PrintProgress(every=100))
        fitted = fit_model(store, "ffp", {**params, "lr_g": lr, "lr_d": lr / 10}, "train", training=options)
        heldout = fitted.calibration.videos
        rows.append(
            {
                "lr_g": lr,
                "lr_d": lr / 10,
                "heldout_psnr": -fitted.calibration.mean,  # the model's score is −PSNR
                "seconds": round(time.perf_counter() - started, 1),
                "heldout_videos": heldout,
            }
        )
        print(f"lr_g {lr:g}: held-out PSNR {rows[-1]['heldout_psnr']:.3f} dB ({rows[-1]['seconds']:.0f} s)", flush=True)
    baseline = last_frame_psnr(store, rows[0]["heldout_videos"], params["resolution"])
    print(f"repeat the last frame on the same held-out training videos: {baseline:.3f} dB")
    return {"candidates": rows, "last_frame_heldout_psnr": baseline, "params": params}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--store", type=Path, default=HERE.parent / "stores" / "ped2.zarr")
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--disc-channels", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--minutes", type=float, help="Stop training after this much training time (keeps the steps).")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--lr-g", type=float, default=None, help="Generator learning rate [default: published].")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is faster on a busy machine).")
    parser.add_argument("--skip-fit", action="store_true", help="Score and evaluate an existing model file.")
    parser.add_argument("--select", help="Generator learning rates (a,b,…) to compare on held-out train videos.")
    args = parser.parse_args()
    labels = args.data / "labels.csv"
    if not labels.is_file():
        print(f"error: {args.data}: no Ped2 here (labels.csv missing)", file=sys.stderr)
        return 2
    import torch

    from vadctl.models.files import load_model
    from vadctl.models.fit import fit_model
    from vadctl.models.training import TrainOptions
    from vadctl.scoring.score import score_model
    from vadctl.scoring.tables import write_parquet_atomic
    from vadctl.store import FeatureStore

    if args.threads:
        torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    model_path = OUT / "ffp.safetensors"
    ensure_frames(args.data, args.store)
    store = FeatureStore(args.store, read_only=True)
    params = {
        "resolution": args.resolution,
        "base_channels": args.base_channels,
        "disc_channels": args.disc_channels,
        "steps": args.steps,
        "device": "cpu",
    }
    if args.select:
        selection = select(store, params, [float(v) for v in args.select.split(",")])
        selection["machine"] = {"torch": torch.__version__, "threads": torch.get_num_threads()}
        (OUT / "select.json").write_text(json.dumps(selection, indent=2))
        return 0
    if args.lr_g is not None:
        params["lr_g"], params["lr_d"] = args.lr_g, args.lr_g / 10
    results_path = OUT / "results.json"
    results = json.loads(results_path.read_text()) if args.skip_fit and results_path.exists() else {}
    if not args.skip_fit:
        limit = None if args.minutes is None else args.minutes * 60
        options = TrainOptions(resume=args.resume, progress=PrintProgress(), checkpoint_every=100, time_limit=limit)
        started = time.perf_counter()
        fitted = fit_model(store, "ffp", params, "train", out=model_path, training=options)
        seconds = time.perf_counter() - started
        for note in fitted.notes:
            print(note)
        results["fit"] = {
            "params": params,
            "fit_videos": len(fitted.fit_videos),
            "heldout_videos": fitted.calibration.videos,
            "train_seconds_this_run": round(fitted.model.train_seconds_, 1),
            "steps_done": fitted.model.steps_,
            "time_limit_minutes": args.minutes,
            "load_average_after_fit": os.getloadavg(),
            "fit_seconds_this_run": round(seconds, 1),
            "resumed": args.resume,
            "final_losses": fitted.model.history_[-1] if fitted.model.history_ else None,
        }
    loaded = load_model(model_path)
    started = time.perf_counter()
    frames, regions = score_model(loaded, store, "test")
    score_seconds = time.perf_counter() - started
    write_parquet_atomic(frames, OUT / "scores.parquet")
    write_parquet_atomic(regions, OUT / "scores.regions.parquet")
    results["ffp"] = evaluate_columns(frames, labels, ["score", "score_minmax"])
    results["baseline_last_frame"] = evaluate_columns(
        last_frame_baseline(store, args.resolution), labels, ["score", "score_minmax"]
    )
    results["score"] = {"seconds": round(score_seconds, 1), "frames": len(frames), "boxes": len(regions)}
    results["model"] = {"steps": loaded.model.steps_, "pixel_calibration": loaded.model.pixel_calibration_}
    results["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    results_path.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: results[k] for k in ("ffp", "baseline_last_frame", "score")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
