"""Score timelines for the review page, drawn by matplotlib as SVG files the page shows as images.

An `<img>` SVG runs no script and loads nothing, and text is SVG text in the browser's own fonts
(nothing to fetch). Figures are made with `matplotlib.figure.Figure`, never pyplot, so no GUI backend
or global state is involved. Long videos are reduced to their per-bin maxima first: a peak stays
visible and a file stays small.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import polars as pl
from matplotlib.figure import Figure

MAX_POINTS = 1500
SCORE, THRESHOLD, SPAN, PEAK = "#1f4e79", "#d08000", "#d62728", "#7f0000"


def _curve(frames: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    frames = frames.sort("frame")
    x, y = frames["frame"].to_numpy(), frames["score"].to_numpy().astype(np.float64)
    if len(x) > MAX_POINTS:
        bins = np.array_split(np.arange(len(x)), MAX_POINTS // 2)
        x = np.concatenate([[x[b[0]], x[b[-1]]] for b in bins])
        y = np.concatenate([[y[b].max(), y[b].max()] for b in bins])
    return x, y


def timeline(frames: pl.DataFrame, spans: list[tuple[int, int, int]], out: Path, highlight: bool) -> Path:
    """Write the score curve of one video with its threshold and the events' spans (first, last,
    peak frame) shaded. `highlight`: one event's page (its span strong, its peak marked)."""
    x, y = _curve(frames)
    threshold = float(frames["threshold"][0]) if "threshold" in frames.columns and len(frames) else None
    figure = Figure(figsize=(7.0, 1.7), dpi=72)
    figure.subplots_adjust(left=0.1, right=0.99, bottom=0.24, top=0.95)
    axes = figure.add_subplot()
    for start, end, peak in spans:
        axes.axvspan(start - 0.5, end + 0.5, color=SPAN, alpha=0.25 if highlight else 0.18, linewidth=0)
        if highlight:
            axes.axvline(peak, color=PEAK, linewidth=0.8, linestyle=":")
    axes.plot(x, y, color=SCORE, linewidth=1.0, label="score")
    if threshold is not None and np.isfinite(threshold):
        axes.axhline(threshold, color=THRESHOLD, linewidth=1.0, linestyle="--", label="threshold")
    axes.set_xlim(float(x.min()) if len(x) else 0, float(x.max()) if len(x) else 1)
    axes.set_xlabel("frame", fontsize=8)
    axes.set_ylabel("score", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(loc="upper right", fontsize=7, frameon=False, ncols=2)
    axes.margins(x=0)
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "vadctl"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out
