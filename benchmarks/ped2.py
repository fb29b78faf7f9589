"""Accuracy and cost on the real UCSD Ped2, through the exact command-line sequence a user runs.

  vadctl extract ped2/train --store S --split train
  vadctl extract ped2/test  --store S --split test
  vadctl fit --model aivad --store S --out M
  vadctl score --model M --store S --split test --out scores.parquet
  vadctl eval --scores scores.parquet --labels ped2/labels.csv

then the same fit/score/eval for FUVAS on the weight-free `motion` clip feature. All defaults; no
parameter is chosen by test labels. Usage: python benchmarks/ped2.py [--data ../shared/data/ped2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"
VADCTL = [sys.executable, "-m", "vadctl"]
ANCHORS = "published micro AUROC on Ped2: AI-VAD 99.1 (Mask R-CNN + CLIP + pose), FFP 95.4"


def timed(*args: str) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([*VADCTL, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"vadctl {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stdout


def model_run(name: str, store: Path, out: Path, labels: Path, *params: str) -> dict:
    model, scores, metrics = out / f"{name}.safetensors", out / f"{name}.parquet", out / f"{name}.json"
    fit_s, _ = timed("fit", "--model", name, "--store", store, "--out", model, *params)
    score_s, _ = timed("score", "--model", model, "--store", store, "--split", "test", "--out", scores)
    eval_s, _ = timed("eval", "--scores", scores, "--labels", labels, "--json", metrics, "--plots", out / name)
    result = json.loads(metrics.read_text())
    return {
        "model": name,
        "fit_s": fit_s,
        "score_s": score_s,
        "eval_s": eval_s,
        "micro": result["micro_auroc"],
        "macro": result["macro_auroc"],
        "macro_videos": result["macro_videos"],
        "ap": result["average_precision"],
        "f1": result["f1"],
        "per_video": {v["video"]: v["auroc"] for v in result["videos"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "ped2")
    args = parser.parse_args()
    if not (args.data / "labels.csv").is_file():
        raise SystemExit(f"{args.data}: no Ped2 here (expected train/, test/ and labels.csv)")
    args.out.mkdir(parents=True, exist_ok=True)
    labels = args.data / "labels.csv"
    with tempfile.TemporaryDirectory(prefix="vadctl-ped2-") as tmp:
        store = Path(tmp) / "ped2.zarr"
        extract = {
            split: timed("extract", args.data / split, "--store", store, "--split", split, "-q")[0]
            for split in ("train", "test")
        }
        rerun = sum(timed("extract", args.data / s, "--store", store, "--split", s, "-q")[0] for s in ("train", "test"))
        rows = [model_run("aivad", store, args.out, labels)]
        motion = sum(
            timed("extract", args.data / s, "--store", store, "--split", s, "--features", "motion", "-q")[0]
            for s in ("train", "test")
        )
        rows.append(model_run("fuvas", store, args.out, labels))
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "extract_s": extract,
        "rerun_s": rerun,
        "motion_extract_s": motion,
        "models": rows,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"UCSD Ped2 ({summary['machine']}); {ANCHORS}")
    print(
        f"extract (frames, flow, regions, velocity): train {extract['train']:.1f} s, test {extract['test']:.1f} s; "
        f"rerun of both {rerun:.1f} s; motion clip feature {motion:.1f} s"
    )
    print(f"{'model':<8} {'micro':>7} {'macro':>7} {'AP':>7} {'F1@thr':>7} {'fit s':>7} {'score s':>8}")
    for r in rows:
        print(
            f"{r['model']:<8} {r['micro']:7.4f} {r['macro']:7.4f} {r['ap']:7.4f} {r['f1']:7.4f} "
            f"{r['fit_s']:7.1f} {r['score_s']:8.1f}"
        )
    print(
        f"(macro over the {rows[0]['macro_videos']} test videos that hold both classes; fit/score times are whole "
        "CLI runs, process start-up included)"
    )


if __name__ == "__main__":
    main()
