"""Two cameras, one store: the scene-aware model where it belongs, against one model per scene and against
AI-VAD/FUVAS fitted on the pooled store (a user with several cameras and one model).

Store (weight-free, the extract's default features): split `train` holds Ped1's 17 training clips and
Ped2's 16 (`ped1/NN`, `ped2/NN`), split `test` Ped1 test 01–18 and Ped2 test 01–12; `train_ped1` and
`train_ped2` each one scene's training clips, for the per-scene models. Scene labels come from a scene map
(`video,scene`). Every model is scored on `test` and evaluated per scene (micro AUROC from scikit-learn over
that scene's frames, macro over its clips holding both classes). Per-scene models are evaluated on their
own scene only. Every model runs with its defaults except sceneaware's `mode` (contrastive needs two scenes,
so per-scene models reconstruct) and `scene_map`. Usage:
  python benchmarks/two_scenes.py [--data ../shared/data] [--work DIR] [--steps N]
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
DATA = HERE.parent.parent / "shared" / "data"
SCENES = {"ped1": tuple(f"{i:02d}" for i in range(1, 19)), "ped2": tuple(f"{i:02d}" for i in range(1, 13))}


def link(target: Path, source: Path) -> None:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)


def prepare(data: Path, work: Path) -> dict:
    """Folders of symlinks (the data is read in place), the scene map, the labels, then the extracts."""
    from vadctl import api

    scene_rows, label_parts = ["video,scene"], []
    for scene, tests in SCENES.items():
        for clip in sorted((data / scene / "train").glob("*.mp4")):
            link(work / "train" / scene / clip.name, clip)
            link(work / f"train_{scene}" / scene / clip.name, clip)
            scene_rows.append(f"{scene}/{clip.stem},{scene}")
        for clip in tests:
            link(work / "test" / scene / f"{clip}.mp4", data / scene / "test" / f"{clip}.mp4")
            scene_rows.append(f"{scene}/{clip},{scene}")
        labels = pl.read_csv(data / scene / "labels.csv", schema_overrides={"video": pl.String})
        labels = labels.filter(pl.col("video").is_in(tests))
        label_parts.append(
            labels.with_columns(pl.lit(scene).alias("scene"), (f"{scene}/" + pl.col("video")).alias("video"))
        )
    scene_map = work / "scenes.csv"
    scene_map.write_text("\n".join(scene_rows) + "\n")
    store = work / "store.zarr"
    started = time.perf_counter()
    for split in ("train", "test", "train_ped1", "train_ped2"):
        api.extract([work / split], store, split)
    return {
        "store": store,
        "scene_map": scene_map,
        "labels": pl.concat(label_parts),
        "extract_s": time.perf_counter() - started,
    }


def per_scene(scores: Path, labels: pl.DataFrame) -> dict[str, dict]:
    from sklearn.metrics import roc_auc_score

    frames = pl.read_parquet(scores).join(labels, on=["video", "frame"], how="inner")
    out = {}
    for (scene,), part in frames.group_by(["scene"]):
        clips = [
            roc_auc_score(c["label"].to_numpy(), c["score"].to_numpy())
            for _, c in part.group_by(["video"])
            if c["label"].n_unique() == 2
        ]
        out[scene] = {
            "micro": float(roc_auc_score(part["label"].to_numpy(), part["score"].to_numpy())),
            "macro": float(np.mean(clips)),
            "frames": len(part),
        }
    return out


def run(label: str, model: str, split: str, params: dict, prepared: dict, out: Path) -> dict:
    from vadctl import api

    stem = label.replace(" ", "_").replace(",", "").replace("/", "_")
    started = time.perf_counter()
    path = api.fit(model, prepared["store"], out / f"{stem}.safetensors", params, split=split)
    fit_s = time.perf_counter() - started
    scores = api.score(path, prepared["store"], "test", out / f"{stem}.parquet")
    row = {
        "label": label,
        "model": model,
        "split": split,
        "fit_s": fit_s,
        "scenes": per_scene(scores, prepared["labels"]),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "two_scenes")
    parser.add_argument("--work", type=Path, default=None, help="keep the store here (default: a temp folder)")
    parser.add_argument("--steps", type=int, default=None, help="sceneaware training steps (default: its epochs)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vadctl-two-scenes-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepared = prepare(args.data, work)
        scene_map = str(prepared["scene_map"])
        steps = {"steps": args.steps} if args.steps else {}
        rows = [
            run(
                "sceneaware contrastive, pooled",
                "sceneaware",
                "train",
                {"mode": "contrastive", "scene_map": scene_map, **steps},
                prepared,
                args.out,
            ),
            run(
                "sceneaware reconstruction, pooled",
                "sceneaware",
                "train",
                {"mode": "reconstruction", **steps},
                prepared,
                args.out,
            ),
            run("aivad, pooled", "aivad", "train", {}, prepared, args.out),
            run("fuvas, pooled", "fuvas", "train", {}, prepared, args.out),
        ]
        for scene in SCENES:
            split = f"train_{scene}"
            rows.append(
                run(
                    f"sceneaware reconstruction, {scene} only",
                    "sceneaware",
                    split,
                    {"mode": "reconstruction", **steps},
                    prepared,
                    args.out,
                )
            )
            rows.append(run(f"aivad, {scene} only", "aivad", split, {}, prepared, args.out))
            rows.append(run(f"fuvas, {scene} only", "fuvas", split, {}, prepared, args.out))
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "extract_s": prepared["extract_s"],
        "rows": rows,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nTwo scenes in one store ({summary['machine']}; extract {prepared['extract_s']:.0f} s): micro (macro)")
    print(f"{'model':<40} {'Ped1 test 01-18':>18} {'Ped2 test':>18} {'fit s':>7}")
    for row in rows:
        cells = [
            f"{row['scenes'][s]['micro']:.4f} ({row['scenes'][s]['macro']:.3f})"
            if s in row["scenes"] and (row["split"] == "train" or row["split"] == f"train_{s}")
            else "–"
            for s in SCENES
        ]
        print(f"{row['label']:<40} {cells[0]:>18} {cells[1]:>18} {row['fit_s']:7.1f}")


if __name__ == "__main__":
    main()
