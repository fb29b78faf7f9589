"""What the weak-supervision benchmarks share (benchmarks/ped1_weak.py, benchmarks/ped2_weak.py): a scene's
weak split, plovad fitted on video-level labels for several seeds, scored on held-out test clips, with the
unsupervised AI-VAD and FUVAS fitted on the scene's normal training clips beside it.

Splits of the store: `train` holds the scene's training clips (normal, label 0) and the weakly labelled test
clips (anomalous, label 1), as `train/NN` and `test/NN`; `test` holds the evaluated clips; `normal` the
training clips alone (for the unsupervised baselines). No frame label reaches training; the evaluated clips'
labels reach nothing but the evaluation. Weight-free features: flow, regions, velocity and motion with the
extract's default parameters (what plovad reads; the baselines here therefore run without HOG). Not a
benchmark itself: a scene script names its data and clips and calls `main`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
FEATURES = ("flow", "regions", "velocity", "motion")


@dataclass(frozen=True)
class WeakScene:
    """One scene's weak split: the test clips labelled per video (all anomalous) and those evaluated."""

    name: str
    data: Path
    weak_anomalous: tuple[str, ...]
    evaluated: tuple[str, ...]


def link_folder(folder: Path, files: dict[str, Path]) -> Path:
    """A folder of symlinks (the data is read in place, never copied)."""
    for name, target in files.items():
        link = folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(target)
    return folder


def prepare(scene: WeakScene, data: Path, work: Path) -> dict:
    from vadctl import api

    train = {f"train/{p.name}": p for p in sorted((data / "train").glob("*.mp4"))}
    weak = {**train, **{f"test/{v}.mp4": data / "test" / f"{v}.mp4" for v in scene.weak_anomalous}}
    evaluated = {f"{v}.mp4": data / "test" / f"{v}.mp4" for v in scene.evaluated}
    roots = {
        "train": link_folder(work / "weak", weak),
        "test": link_folder(work / "evaluated", evaluated),
        "normal": link_folder(work / "normal", {p.name: p for p in train.values()}),
    }
    labels = ["video,label"] + [f"train/{p.stem},0" for p in train.values()]
    labels += [f"test/{v},1" for v in scene.weak_anomalous]
    video_labels = work / "video_labels.csv"
    video_labels.write_text("\n".join(labels) + "\n")
    frame_labels = pl.read_csv(data / "labels.csv", schema_overrides={"video": pl.String})
    eval_labels = work / "labels_evaluated.csv"
    frame_labels.filter(pl.col("video").is_in(scene.evaluated)).write_csv(eval_labels)
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


def fit_plovad(prepared: dict, path: Path, params: dict, seed: int) -> float:
    from vadctl import api

    started = time.perf_counter()
    api.fit(
        "plovad",
        prepared["store"],
        path,
        {**params, "random_state": seed},
        seed=seed,
        video_labels=prepared["video_labels"],
    )
    return time.perf_counter() - started


def print_table(scene: WeakScene, summary: dict, rows: list[dict], baselines: list[dict]) -> None:
    weak = f"{scene.weak_anomalous[0]}-{scene.weak_anomalous[-1]}"
    evaluated = f"{scene.evaluated[0]}-{scene.evaluated[-1]}"
    print(
        f"\n{scene.name} weak split: train/ normal + test/{weak} anomalous (video labels only); "
        f"frames of test/{evaluated}"
    )
    print(
        f"({summary['machine']}; extract of the three splits {summary['extract_s']:.0f} s; params {summary['params']})"
    )
    header = f"{'model':<12} {'micro':>7} {'macro':>7} {'AP':>7} " + " ".join(f"{v:>6}" for v in scene.evaluated)
    print(header + f" {'frames TP/FP/FN/TN':>20} {'fit s':>7}")
    for r in [*rows, *baselines]:
        cells = " ".join(
            f"{r['per_video'][v]:6.3f}" if r["per_video"].get(v) is not None else "     –" for v in scene.evaluated
        )
        c = r["frame_confusion"]
        counts = f"{c['tp']}/{c['fp']}/{c['fn']}/{c['tn']}"
        print(
            f"{r['model']:<12} {r['micro']:7.4f} {r['macro']:7.4f} {r['ap']:7.4f} {cells} {counts:>20} "
            f"{r['fit_s']:7.1f}"
        )
    micro = [r["micro"] for r in rows]
    print(
        f"plovad micro over {len(rows)} seeds: {np.mean(micro):.4f} ± {np.std(micro):.4f} "
        f"(min {np.min(micro):.4f}, max {np.max(micro):.4f})"
    )


def main(scene: WeakScene, doc: str | None = None) -> None:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=scene.data)
    parser.add_argument("--out", type=Path, default=HERE / "out" / f"{scene.name.lower()}_weak")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="keep the store here (default: a temp folder)")
    parser.add_argument("-p", "--param", action="append", default=[], help="plovad parameter KEY=VALUE")
    parser.add_argument("--no-baselines", action="store_true", help="plovad only (no AI-VAD/FUVAS rows)")
    args = parser.parse_args()
    if not (args.data / "labels.csv").is_file():
        raise SystemExit(f"{args.data}: no {scene.name} here (expected train/, test/ and labels.csv)")
    from vadctl import api
    from vadctl.common.params import parse_assignments

    args.out.mkdir(parents=True, exist_ok=True)
    params = {"device": "cpu", **parse_assignments(args.param, "--param", "k=v")}
    with tempfile.TemporaryDirectory(prefix=f"vadctl-{scene.name.lower()}-weak-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepared = prepare(scene, args.data, work)
        rows = []
        for seed in range(args.seeds):
            path = args.out / f"plovad-{seed}.safetensors"
            fit_s = fit_plovad(prepared, path, params, seed)
            rows.append(evaluate(f"plovad-{seed}", path, prepared, args.out, {"fit_s": fit_s, "seed": seed}))
            print(json.dumps(rows[-1]), flush=True)
        baselines = []
        for name in () if args.no_baselines else ("aivad", "fuvas"):
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
        "plovad_micro_min": float(np.min(micro)),
        "baselines": baselines,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_table(scene, summary, rows, baselines)
