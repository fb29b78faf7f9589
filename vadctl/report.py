"""Plots for `vadctl eval`: score timelines with the labelled anomalous ranges, and the ROC curve."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.metrics import roc_curve

from vadctl.metrics import Metrics


def labelled_ranges(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges where the label is 1."""
    edges = np.diff(np.concatenate([[0], labels.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def timeline(part: pl.DataFrame, column: str, path: Path, title: str) -> Path:
    """One video: score over frames, anomalous ground truth shaded, threshold dashed."""
    frames = part["frame"].to_numpy()
    scores = part[column].to_numpy()
    fig, ax = plt.subplots(figsize=(9, 2.8), dpi=110)
    for start, stop in labelled_ranges(part["label"].to_numpy()):
        ax.axvspan(frames[start] - 0.5, frames[stop - 1] + 0.5, color="tab:red", alpha=0.15, lw=0)
    ax.plot(frames, scores, color="tab:blue", lw=1.3, label=column)
    if "threshold" in part.columns and column == "score":
        ax.axhline(part["threshold"][0], color="black", ls="--", lw=1, label="threshold")
    flagged = part["is_anomaly"].to_numpy() if "is_anomaly" in part.columns else np.zeros(len(part), bool)
    if flagged.any() and column == "score":
        ax.scatter(frames[flagged], scores[flagged], s=4, color="tab:orange", zorder=3, label="flagged")
    ax.set_xlim(frames.min() - 0.5, frames.max() + 0.5)
    ax.set_xlabel("frame")
    ax.set_ylabel(column)
    ax.set_title(title, fontsize=10, loc="left")
    handles, names = ax.get_legend_handles_labels()
    handles.append(plt.Rectangle((0, 0), 1, 1, color="tab:red", alpha=0.15))
    names.append("labelled anomalous")
    ax.legend(handles, names, fontsize=7, loc="upper left", ncols=4, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def roc_plot(joined: pl.DataFrame, column: str, metrics: Metrics, path: Path) -> Path:
    y = joined["label"].to_numpy()
    fpr, tpr, _ = roc_curve(y, joined[column].to_numpy())
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=110)
    ax.plot(fpr, tpr, color="tab:blue", lw=1.6, label=f"micro AUROC {metrics.micro_auroc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    if metrics.confusion:
        c = metrics.confusion
        point = (c["fp"] / max(c["fp"] + c["tn"], 1), c["tp"] / max(c["tp"] + c["fn"], 1))
        ax.scatter(*point, color="black", zorder=3, s=18, label="at threshold")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC ({column}, {metrics.frames} frames)", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_plots(joined: pl.DataFrame, metrics: Metrics, folder: Path) -> list[Path]:
    """roc.png plus timeline_<video>.png for every video."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    if metrics.micro_auroc is not None:
        paths.append(roc_plot(joined, metrics.column, metrics, folder / "roc.png"))
    by_video = {v.video: v for v in metrics.videos}
    for (video,), part in joined.group_by(["video"], maintain_order=True):
        auroc = by_video[video].auroc
        title = f"video {video}" + (f" — AUROC {auroc:.3f}" if auroc is not None else " — single-class")
        paths.append(timeline(part, metrics.column, folder / f"timeline_{_safe(video)}.png", title))
    return paths
