"""Ped2 weak split (ours): weak supervision on UCSD Ped2 with video-level labels only.

Training (split `train` of the store): Ped2 train/01–16 (normal, label 0) and test/01–06
(anomalous, label 1), as `train/NN` and `test/NN`; no frame label of any video reaches training.
Evaluation (split `test`): test/07–12, frame-level AUROC against Ped2's labels of those videos
only, with the confusion matrices at the model's μ+3σ threshold. Beside it, the unsupervised
AI-VAD (velocity) and FUVAS (motion grid), fitted on train/01–16 alone (split `normal`) and
scored on the same frames. Weight-free features only: flow, regions, velocity, motion.

plovad runs with its defaults (chosen before this split was evaluated; see RESULTS.md), for
`--seeds` seeds (the seed changes the network's initialisation, batches and the held-out
calibration videos; nothing else). For each fit, before test 07–12 is scored, a label-free check
on training data: the "cold gap" (`recording_gap`), how much higher the detection logit of
anomalous training videos' snippets is than normal videos' where no cell looks unusual (near 0
for a model that detects anomalies, large for one that learnt which recording it is in). Usage:
  python benchmarks/ped2_weak.py [--data ../shared/data/ped2] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"
FEATURES = ("flow", "regions", "velocity", "motion")
WEAK_ANOMALOUS = ("01", "02", "03", "04", "05", "06")
EVALUATED = ("07", "08", "09", "10", "11", "12")


def link_folder(folder: Path, files: dict[str, Path]) -> Path:
    """A folder of symlinks (Ped2 is read in place, never copied)."""
    for name, target in files.items():
        link = folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(target)
    return folder


def prepare(data: Path, work: Path) -> dict:
    from vadctl import api

    train = {f"train/{p.name}": p for p in sorted((data / "train").glob("*.mp4"))}
    weak = {**train, **{f"test/{v}.mp4": data / "test" / f"{v}.mp4" for v in WEAK_ANOMALOUS}}
    evaluated = {f"{v}.mp4": data / "test" / f"{v}.mp4" for v in EVALUATED}
    roots = {
        "train": link_folder(work / "weak", weak),
        "test": link_folder(work / "evaluated", evaluated),
        "normal": link_folder(work / "normal", {p.name: p for p in train.values()}),
    }
    labels = ["video,label"] + [f"train/{p.stem},0" for p in train.values()]
    labels += [f"test/{v},1" for v in WEAK_ANOMALOUS]
    video_labels = work / "video_labels.csv"
    video_labels.write_text("\n".join(labels) + "\n")
    frame_labels = pl.read_csv(data / "labels.csv", schema_overrides={"video": pl.String})
    eval_labels = work / "labels_07_12.csv"
    frame_labels.filter(pl.col("video").is_in(EVALUATED)).write_csv(eval_labels)
    store = work / "store.zarr"
    started = time.perf_counter()
    for split, root in roots.items():
        api.extract([root], store, split, FEATURES)
    return {
        "store": store,
        "video_labels": video_labels,
        "labels": eval_labels,
        "extract_s": time.perf_counter() - started,
    }


def recording_gap(model_path: Path, store_path: Path, video_labels: Path) -> float:
    """Label-free check on training data only: median detection logit of the *cold* snippets (all
    cells below the held-out normal videos' median peak heat) of the anomalous training videos,
    minus that of the held-out normal videos. Cold snippets show nothing unusual in any cell; a
    detection path that lifts them in anomalous videos has learnt the recording, not the anomaly."""
    from vadctl.models.files import load_model
    from vadctl.store import FeatureStore
    from vadctl.video.labels import read_video_labels

    loaded = load_model(model_path)
    model, store = loaded.model, FeatureStore(store_path, read_only=True)
    held = loaded.calibration.videos
    positives = read_video_labels(video_labels).anomalous()
    normal = [model._predict(model._load(store, "train", v)) for v in held]
    cold = float(np.median(np.concatenate([p["snippet_heat"] for p in normal])))

    def cold_detection(predicted: list[dict]) -> float:
        values = [p["detection"][p["snippet_heat"] <= cold] for p in predicted]
        return float(np.median(np.concatenate(values)))

    anomalous = [model._predict(model._load(store, "train", v)) for v in positives]
    return cold_detection(anomalous) - cold_detection(normal)


def evaluate(name: str, model: Path, prepared: dict, out: Path, extra: dict | None = None) -> dict:
    from vadctl import api

    started = time.perf_counter()
    scores = api.score(model, prepared["store"], "test", out / f"{name}.parquet")
    score_s = time.perf_counter() - started
    metrics = api.evaluate(scores, prepared["labels"], plots=out / name)
    (out / f"{name}.json").write_text(json.dumps({k: v for k, v in metrics.items() if k != "plots"}, indent=2))
    return {
        "model": name,
        "micro": metrics["micro_auroc"],
        "macro": metrics["macro_auroc"],
        "ap": metrics["ap"],
        "per_video": {v["video"]: v["auroc"] for v in metrics["videos"]},
        "frame_confusion": metrics["confusion"],
        "video_confusion": metrics["video_confusion"],
        "score_s": score_s,
        **(extra or {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "ped2_weak")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="keep the store here (default: a temp folder)")
    parser.add_argument("-p", "--param", action="append", default=[], help="plovad parameter KEY=VALUE")
    args = parser.parse_args()
    if not (args.data / "labels.csv").is_file():
        raise SystemExit(f"{args.data}: no Ped2 here (expected train/, test/ and labels.csv)")
    from vadctl import api
    from vadctl.common.params import parse_assignments

    args.out.mkdir(parents=True, exist_ok=True)
    params = {"device": "cpu", **parse_assignments(args.param, "--param", "k=v")}
    with tempfile.TemporaryDirectory(prefix="vadctl-ped2-weak-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepared = prepare(args.data, work)
        rows = []
        for seed in range(args.seeds):
            path = args.out / f"plovad-{seed}.safetensors"
            started = time.perf_counter()
            api.fit(
                "plovad",
                prepared["store"],
                path,
                {**params, "random_state": seed},
                seed=seed,
                video_labels=prepared["video_labels"],
            )
            fit_s = time.perf_counter() - started
            gap = recording_gap(
                path, prepared["store"], prepared["video_labels"]
            )  # before anything of test 07-12 is scored
            extra = {"fit_s": fit_s, "seed": seed, "cold_gap": gap}
            rows.append(evaluate(f"plovad-{seed}", path, prepared, args.out, extra))
            print(json.dumps(rows[-1]))
        baselines = []
        for name in ("aivad", "fuvas"):
            path = args.out / f"{name}.safetensors"
            started = time.perf_counter()
            api.fit(name, prepared["store"], path, split="normal")
            baselines.append(evaluate(name, path, prepared, args.out, {"fit_s": time.perf_counter() - started}))
    micro = [r["micro"] for r in rows]
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "extract_s": prepared["extract_s"],
        "params": params,
        "plovad": rows,
        "plovad_micro_mean": float(np.mean(micro)),
        "plovad_micro_std": float(np.std(micro)),
        "baselines": baselines,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        "\nPed2 weak split (ours): train/01-16 normal + test/01-06 anomalous (video labels only); frames of test/07-12"
    )
    print(f"({summary['machine']}; extract of the three splits {prepared['extract_s']:.0f} s)")
    header = f"{'model':<12} {'micro':>7} {'macro':>7} {'AP':>7} " + " ".join(f"{v:>6}" for v in EVALUATED)
    print(header + f" {'frames TP/FP/FN/TN':>20} {'fit s':>7} {'cold gap':>9}")
    for r in [*rows, *baselines]:
        cells = " ".join(
            f"{r['per_video'][v]:6.3f}" if r["per_video"].get(v) is not None else "     –" for v in EVALUATED
        )
        c = r["frame_confusion"]
        counts = f"{c['tp']}/{c['fp']}/{c['fn']}/{c['tn']}"
        gap = f"{r['cold_gap']:9.2f}" if "cold_gap" in r else ""
        print(
            f"{r['model']:<12} {r['micro']:7.4f} {r['macro']:7.4f} {r['ap']:7.4f} {cells} {counts:>20} "
            f"{r['fit_s']:7.1f} {gap}"
        )
    print(f"plovad micro over {len(rows)} seeds: {np.mean(micro):.4f} ± {np.std(micro):.4f}")


if __name__ == "__main__":
    main()
