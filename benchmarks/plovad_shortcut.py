"""The "crowded = anomalous" trap of weak supervision, reproduced where the ground truth is known.

On Ped2's weak split every normal training video comes from the train recordings and every
anomalous one from the (more crowded) test recordings, so a video-level label also says "crowded".
This script builds the same trap from the demo generator, with frame labels for everything:

  normal training videos     density 0.030–0.045 walkers/frame (train/)
  anomalous training videos  density 0.060–0.080, one anomaly each, video label + class (weak/)
  held-out test videos       density 0.030–0.080 for all, half normal, half anomalous (kinds in turn)

and fits `plovad` variants on it, judged on the held-out frames (micro AUROC), on whether whole
videos are told apart (video AUROC of the peak frame score) and on the shortcut's signature: the
rank correlation, over the held-out *normal* videos, of their mean score with their crowd density
(a model that learnt "crowded" scores crowded normal videos high). Nothing here reads Ped2, so the
variant Ped2 uses can be chosen from these figures without its evaluation labels.

Usage: python benchmarks/plovad_shortcut.py [--steps 300] [--out benchmarks/out/plovad_shortcut]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

HERE = Path(__file__).resolve().parent
FEATURES = ("flow", "regions", "velocity", "motion")
VARIANTS = {
    "v1: grid + attributes, absolute": {"inputs": "attributes+grid", "contrast": "none", "detection": "additive"},
    "v1: grid + attributes, within-video contrast": {
        "inputs": "attributes+grid",
        "contrast": "video",
        "detection": "additive",
    },
    "v1: attributes only, absolute": {"inputs": "attributes", "contrast": "none", "detection": "additive"},
    "v1: attributes only, within-video contrast": {
        "inputs": "attributes",
        "contrast": "video",
        "detection": "additive",
    },
    "v2: grid + attributes, within-video contrast": {
        "inputs": "attributes+grid",
        "contrast": "video",
        "detection": "evidence",
    },
    "v2: attributes only, absolute": {"inputs": "attributes", "contrast": "none", "detection": "evidence"},
    "v2: attributes only, within-video contrast": {
        "inputs": "attributes",
        "contrast": "video",
        "detection": "evidence",
    },
}


def crowding(root: Path) -> dict[str, float]:
    """Each video's crowd level, measured as the issue measures Ped2's: the share of moving pixels."""
    from vadctl.video.catalog import discover
    from vadctl.video.reader import VideoReader

    shares = {}
    for source in discover([root]):
        with VideoReader(source) as reader:
            moving = []
            for window in reader.windows(64):
                gray = window.gray.astype(np.int16)
                moving.append((np.abs(np.diff(gray, axis=0)) > 12).mean(axis=(1, 2)))
            shares[source.video_id] = float(np.concatenate(moving).mean())
    return shares


def build(out: Path, n_frames: int, kinds_used: tuple[str, ...], weak_noise: float) -> dict:
    from vadctl import api
    from vadctl.demo import generate

    train = generate(
        out / "trap",
        n_train=10,
        n_test=0,
        n_frames=n_frames,
        seed=11,
        n_weak=9,
        density=(0.03, 0.045),
        weak_density=(0.06, 0.08),
        weak_kinds=kinds_used,
        weak_noise=weak_noise,
    )
    kinds = [None if i % 2 == 0 else kinds_used[(i // 2) % len(kinds_used)] for i in range(12)]
    test = generate(
        out / "heldout", n_train=0, n_test=12, n_frames=n_frames, seed=12, density=(0.03, 0.08), kinds=kinds
    )
    store = out / "store.zarr"
    api.extract([train.train, train.weak], store, "weak", FEATURES)
    api.extract([test.test], store, "test", FEATURES)
    return {"store": store, "video_labels": train.video_labels, "labels": test.labels, "test": test.test}


def judge(scores: pl.DataFrame, labels: pl.DataFrame, crowd: dict[str, float]) -> dict:
    joined = scores.join(labels, on=["video", "frame"])
    per_video = (
        joined.group_by("video")
        .agg(
            pl.col("score").max().alias("peak"),
            pl.col("score").mean().alias("mean"),
            pl.col("label").max().alias("anomalous"),
        )
        .sort("video")
    )
    normal = per_video.filter(pl.col("anomalous") == 0)
    rho = spearmanr(normal["mean"].to_numpy(), [crowd[v] for v in normal["video"]]).statistic
    return {
        "micro_auroc": float(roc_auc_score(joined["label"], joined["score"])),
        "video_auroc": float(roc_auc_score(per_video["anomalous"], per_video["peak"])),
        "crowd_rho_normal": float(rho),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--kinds", default="fast,against,loiter", help="anomaly kinds (bike: Ped2-like cyclists)")
    parser.add_argument("--weak-noise", type=float, default=2.0, help="camera noise of the anomalous training videos")
    parser.add_argument("--variants", default="", help="comma-separated variant numbers (default: all)")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "plovad_shortcut")
    args = parser.parse_args()
    from vadctl.models.files import load_model
    from vadctl.models.fit import fit_model
    from vadctl.scoring.score import score_model
    from vadctl.store import FeatureStore

    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    kinds = tuple(args.kinds.split(","))
    args.out = args.out / ("-".join(kinds) + (f"-noise{args.weak_noise:g}" if args.weak_noise != 2.0 else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    data = build(args.out, args.frames, kinds, args.weak_noise)
    store = FeatureStore(data["store"], read_only=True)
    labels = pl.read_csv(data["labels"], schema_overrides={"video": pl.String}).select("video", "frame", "label")
    crowd = crowding(data["test"])
    rows = []
    chosen = {int(v) for v in args.variants.split(",") if v} or set(range(len(VARIANTS)))
    variants = {name: params for i, (name, params) in enumerate(VARIANTS.items()) if i in chosen}
    for name, params in variants.items():
        for seed in range(args.seeds):
            path = args.out / ("-".join(str(v) for v in params.values()) + f"-{seed}.safetensors")
            fit_model(
                store,
                "plovad",
                {**params, "steps": args.steps, "device": "cpu", "random_state": seed},
                "weak",
                out=path,
                video_labels=data["video_labels"],
            )
            frames, _ = score_model(load_model(path), store, "test")
            rows.append({"variant": name, "seed": seed, **judge(frames, labels, crowd)})
            print(json.dumps(rows[-1]))
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "steps": args.steps,
        "seconds": round(time.perf_counter() - started, 1),
        "rows": rows,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nshortcut trap ({','.join(kinds)}; anomalous training videos twice as crowded), {args.steps} steps")
    print(f"{'variant':<52} {'micro AUROC':>12} {'video AUROC':>12} {'ρ(score, crowd) normal':>24}")
    for name in variants:
        mine = [r for r in rows if r["variant"] == name]
        cells = [np.mean([r[k] for r in mine]) for k in ("micro_auroc", "video_auroc", "crowd_rho_normal")]
        print(f"{name:<52} {cells[0]:12.3f} {cells[1]:12.3f} {cells[2]:24.2f}")


if __name__ == "__main__":
    main()
