"""plovad on held-out demo videos: binary video accuracy, multi-class accuracy, frame AUROC.

Training: 10 normal demo videos (train/) and 12 anomalous ones labelled only per video with their
kind (weak/: fast cyclist, walking against the flow, loitering on the lawn, 4 each). Held out:
24 videos from the same scene distribution (same crowd density range for all): 12 normal and 12
anomalous (4 per kind), labelled per frame with the kind. The demo's own plovad parameters
(`vadctl.demo.DEMO_MODELS`), nothing tuned here; `--seeds` fits, all reported.

Usage: python benchmarks/demo_plovad.py [--seeds 3] [--frames 120]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

SPREAD = (0.04, 0.06)  # crowd density drawn per video, as when RESULTS.md's figures were measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "demo_plovad")
    args = parser.parse_args()
    from vadctl import api
    from vadctl.demo import ANOMALIES, DEMO_FEATURES, DEMO_MODELS, generate

    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train = generate(
        args.out / "train_data", n_train=10, n_test=0, n_frames=args.frames, seed=21, n_weak=12, density=SPREAD
    )
    kinds = [None] * 12 + [ANOMALIES[i % 3] for i in range(12)]
    held = generate(
        args.out / "heldout", n_train=0, n_test=24, n_frames=args.frames, seed=22, kinds=kinds, density=SPREAD
    )
    store = args.out / "store.zarr"
    api.extract([train.train, train.weak], store, "weak", DEMO_FEATURES)
    api.extract([held.test], store, "test", DEMO_FEATURES)
    extract_s = time.perf_counter() - started
    rows = []
    for seed in range(args.seeds):
        path = args.out / f"plovad-{seed}.safetensors"
        fit_started = time.perf_counter()
        params = {**DEMO_MODELS["plovad"], "random_state": seed, "device": "cpu"}
        api.fit("plovad", store, path, params, split="weak", seed=seed, video_labels=train.video_labels)
        fit_s = time.perf_counter() - fit_started
        scores = api.score(path, store, "test", args.out / f"plovad-{seed}.parquet")
        metrics = api.evaluate(scores, held.labels, plots=args.out / f"plots-{seed}")
        rows.append(
            {
                "seed": seed,
                "video_accuracy": metrics["video_accuracy"],
                "class_accuracy": metrics["class_accuracy"],
                "class_accuracy_anomalous": metrics["class_accuracy_anomalous"],
                "micro_auroc": metrics["micro_auroc"],
                "macro_auroc": metrics["macro_auroc"],
                "video_confusion": metrics["video_confusion"],
                "class_confusion": metrics["class_confusion"],
                "fit_s": fit_s,
            }
        )
        print(json.dumps(rows[-1]))
    summary = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "extract_s": extract_s, "rows": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nplovad on 24 held-out demo videos (12 normal, 12 anomalous), {summary['machine']}")
    print(f"{'seed':>4} {'video acc':>10} {'class acc':>10} {'kind acc':>9} {'micro':>7} {'macro':>7} {'fit s':>7}")
    for r in rows:
        print(
            f"{r['seed']:>4} {r['video_accuracy']:10.3f} {r['class_accuracy']:10.3f} "
            f"{r['class_accuracy_anomalous']:9.3f} {r['micro_auroc']:7.3f} {r['macro_auroc']:7.3f} {r['fit_s']:7.1f}"
        )
    keys = ("video_accuracy", "class_accuracy", "class_accuracy_anomalous", "micro_auroc", "macro_auroc")
    means = "  ".join(f"{k} {np.mean([r[k] for r in rows]):.3f}" for k in keys)
    print(f"mean: {means}")


if __name__ == "__main__":
    main()
