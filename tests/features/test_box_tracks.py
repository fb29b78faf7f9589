"""Boxes continuing from frame to frame (greedy IoU), checked on hand-computed overlaps."""

from __future__ import annotations

import numpy as np

from vadctl.features.box_tracks import continue_boxes, iou_matrix


def test_iou_of_hand_drawn_boxes():
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    # half overlap: 50 / (100 + 100 - 50) = 1/3; identical: 1; apart: 0
    np.testing.assert_allclose(iou_matrix(a, b), [[1 / 3, 1, 0], [1 / 3, 1, 0]], rtol=1e-6)
    assert iou_matrix(a, np.zeros((0, 4), np.float32)).shape == (2, 0)


def test_best_pairs_match_first_and_each_box_continues_once():
    previous = np.array([[0, 0, 10, 10], [100, 100, 120, 140]], np.float32)
    current = np.array(
        [
            [1, 0, 11, 10],  # IoU 90/110 = 0.82 with previous 0
            [0, 0, 10, 10],  # IoU 1 with previous 0: matched first, so box 0 starts a new track
            [104, 100, 124, 140],  # IoU 320/480 = 0.67 with previous 1
            [50, 50, 60, 60],  # overlaps nothing
        ],
        np.float32,
    )
    assert continue_boxes(current, previous).tolist() == [-1, 0, 1, -1]


def test_below_half_overlap_is_a_new_track():
    previous = np.array([[0, 0, 10, 10]], np.float32)
    assert continue_boxes(np.array([[5, 0, 15, 10]], np.float32), previous).tolist() == [-1]  # IoU 1/3
    assert continue_boxes(np.array([[2, 0, 12, 10]], np.float32), previous).tolist() == [0]  # 80/120 = 0.67
    assert continue_boxes(np.zeros((0, 4), np.float32), previous).tolist() == []
