"""Choose the weight-free `regions` parameters on Ped2's training frames, against a detector's boxes.

The pre-registered rule is in benchmarks/ped2_choices.md ("Weight-free regions"): every 5th
training frame, YOLOX-nano boxes at its `regions.detector=yolox` defaults as the reference objects,
foreground boxes of each candidate (dilation × binary threshold × blur kernel) matched one to one
at IoU ≥ 0.5, F1 pooled over all frames; the best F1 wins, ties within 0.005 going to the candidate
nearest AI-VAD's own parameters. Only training videos are read; no label is.

Usage: python benchmarks/ped2_regions.py [--data ../shared/data/ped2] [--step 5]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import cv2
import numpy as np
from decord import VideoReader, cpu

from vadctl.features.box_tracks import iou_matrix
from vadctl.features.regions import Regions
from vadctl.features.yolo import OnnxDetector

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"
YOLOX = HERE.parent.parent / "shared" / "weights" / "yolox_nano.onnx"
AIVAD = {"dilation": 0, "binary_threshold": 18, "kernel_size": 3}
GRID = {"dilation": (0, 1, 2, 3, 4, 6), "binary_threshold": (12, 18, 25), "kernel_size": (3, 5)}
IOU_MATCH = 0.5
TIE = 0.005


def greedy_matches(found: np.ndarray, reference: np.ndarray) -> int:
    """Pairs matched one to one at IoU ≥ IOU_MATCH, highest IoU first."""
    iou = iou_matrix(found, reference)
    matched = 0
    while iou.size and iou.max() >= IOU_MATCH:
        i, j = np.unravel_index(np.argmax(iou), iou.shape)
        iou[i, :] = -1
        iou[:, j] = -1
        matched += 1
    return matched


def training_pairs(data: Path, step: int):
    """(video, frame index, gray frame before, gray frame, RGB frame) for every `step`-th training frame."""
    for video in sorted((data / "train").glob("*.mp4")):
        reader = VideoReader(str(video), ctx=cpu(0))
        wanted = list(range(step, len(reader), step))
        before_after = sorted({i for w in wanted for i in (w - 1, w)})
        frames = dict(zip(before_after, reader.get_batch(before_after).asnumpy(), strict=True))
        for index in wanted:
            gray = [cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY) for i in (index - 1, index)]
            yield video.stem, index, gray[0], gray[1], frames[index]


def changed_knobs(params: dict) -> tuple[int, int]:
    return sum(params[k] != AIVAD[k] for k in AIVAD), params["dilation"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--step", type=int, default=5)
    args = parser.parse_args()
    if not sorted((args.data / "train").glob("*.mp4")):
        raise SystemExit(f"{args.data}: no training videos (expected train/*.mp4)")
    if args.step < 1:
        raise SystemExit(f"--step {args.step}: must be ≥ 1")
    if not YOLOX.is_file():
        raise SystemExit(f"skipped: {YOLOX} is absent (the reference boxes need YOLOX-nano)")

    started = time.perf_counter()
    pairs = list(training_pairs(args.data, args.step))
    detector = OnnxDetector("yolox", YOLOX, 0.3)
    reference = []
    for start in range(0, len(pairs), 8):
        reference += [boxes for boxes, _, _ in detector.detect(np.stack([p[4] for p in pairs[start : start + 8]]))]
    n_objects = sum(len(r) for r in reference)
    print(
        f"{len(pairs)} training frames from {len({p[0] for p in pairs})} videos, "
        f"{n_objects} YOLOX boxes ({n_objects / len(pairs):.1f} per frame); {time.perf_counter() - started:.1f} s"
    )

    rows = []
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values, strict=True))
        regions = Regions(**params)
        found = [regions.detect(before, current)[0] for _, _, before, current, _ in pairs]
        n_found = sum(len(f) for f in found)
        matched = sum(greedy_matches(f, r) for f, r in zip(found, reference, strict=True))
        precision, recall = matched / max(n_found, 1), matched / max(n_objects, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-9)
        rows.append((f1, precision, recall, n_found / len(pairs), params))

    best = max(r[0] for r in rows)
    chosen = min((r for r in rows if r[0] >= best - TIE), key=lambda r: changed_knobs(r[4]))
    print(f"{'dilation':>8} {'thresh':>6} {'kernel':>6} {'F1':>6} {'prec':>6} {'recall':>6} {'boxes/frame':>11}")
    for f1, precision, recall, per_frame, params in sorted(rows, key=lambda r: -r[0]):
        mark = "  <- chosen" if params == chosen[4] else ("  <- AI-VAD's" if params == AIVAD else "")
        print(
            f"{params['dilation']:>8} {params['binary_threshold']:>6} {params['kernel_size']:>6} "
            f"{f1:>6.3f} {precision:>6.3f} {recall:>6.3f} {per_frame:>11.2f}{mark}"
        )
    print(f"chosen: {chosen[4]} (F1 {chosen[0]:.3f}; best {best:.3f}); {time.perf_counter() - started:.1f} s in all")


if __name__ == "__main__":
    main()
