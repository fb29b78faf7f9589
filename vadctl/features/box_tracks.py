"""Boxes that continue from one frame to the next: a greedy IoU match, enough to reuse per-box work.

An object's appearance changes little between consecutive frames, so an embedding computed on its
box can stand for it for a few frames (`appearance_regions.refresh`). What continues is decided by
overlap alone (no motion model): each box of frame t takes the box of frame t−1 it overlaps most,
best pairs first, when their IoU is at least `MIN_IOU`; each box of t−1 continues at most once.
"""

from __future__ import annotations

import numpy as np

MIN_IOU = 0.5


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of `a` (n, 4 xyxy) with every box of `b` (m, 4): (n, m)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def continue_boxes(current: np.ndarray, previous: np.ndarray, min_iou: float = MIN_IOU) -> np.ndarray:
    """For each box of `current`, the index of the box of `previous` it continues, or -1 (a new track).

    Greedy: the pair with the highest IoU is matched first (ties: lower current, then lower previous
    index), then the next among the boxes still free, while the IoU is at least `min_iou`.
    """
    matched = np.full(len(current), -1, np.int64)
    iou = iou_matrix(current, previous)
    if iou.size == 0:
        return matched
    order = np.argsort(-iou, axis=None, kind="stable")
    taken = np.zeros(len(previous), bool)
    for flat in order:
        i, j = divmod(int(flat), len(previous))
        if iou[i, j] < min_iou:
            break
        if matched[i] < 0 and not taken[j]:
            matched[i] = j
            taken[j] = True
    return matched
