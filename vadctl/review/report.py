"""Plots for `vadctl eval`: score timelines with the labelled anomalous ranges, the ROC curve,
confusion matrices (frames, videos, classes; PNG plus `confusion.json`), and for models with a
heatmap the distribution of per-frame heatmap peaks of normal and anomalous frames with the
heatmap threshold (the PLOVAD-based system's histogram and violin plots)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import json

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from sklearn.metrics import roc_curve

from vadctl.review.metrics import Metrics


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


def confusion_plot(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> Path:
    """Counts in a grid, true classes down, predicted across."""
    values = np.asarray(matrix)
    size = 2.4 + 0.55 * len(labels)
    fig, ax = plt.subplots(figsize=(size, size * 0.9), dpi=110)
    ax.imshow(values, cmap="Blues")
    for (i, j), count in np.ndenumerate(values):
        dark = count > values.max() / 2
        ax.text(j, i, str(count), ha="center", va="center", color="white" if dark else "black", fontsize=9)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _binary(confusion: dict[str, int]) -> list[list[int]]:
    return [[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]]


def confusion_plots(metrics: Metrics, folder: Path) -> list[Path]:
    """confusion_frames.png, confusion_videos.png, confusion_classes.png (what applies) and
    confusion.json holding the same matrices."""
    paths, data = [], {}
    binary = ["normal", "anomalous"]
    for name, confusion, what in (
        ("frames", metrics.confusion, "frames"),
        ("videos", metrics.video_confusion, "videos (any frame flagged)"),
    ):
        if confusion:
            data[name] = {"labels": binary, "matrix": _binary(confusion)}
            title = f"{what} at the threshold"
            paths.append(confusion_plot(_binary(confusion), binary, title, folder / f"confusion_{name}.png"))
    if metrics.class_confusion:
        data["classes"] = metrics.class_confusion
        title = f"video classes (accuracy {metrics.class_accuracy:.2f})"
        c = metrics.class_confusion
        paths.append(confusion_plot(c["matrix"], c["labels"], title, folder / "confusion_classes.png"))
    if data:
        target = folder / "confusion.json"
        target.write_text(json.dumps(data, indent=2))
        paths.append(target)
    return paths


def heatmap_distribution(joined: pl.DataFrame, folder: Path) -> list[Path]:
    """Histogram and violin plot of per-frame heatmap peaks, normal vs anomalous frames, with the
    heatmap threshold: how well the localization head's values separate, and where the cut is."""
    peaks = joined["heatmap_peak"].to_numpy()
    labels = joined["label"].to_numpy()
    groups = {"normal": peaks[labels == 0], "anomalous": peaks[labels == 1]}
    groups = {k: v for k, v in groups.items() if len(v)}
    threshold = joined["heatmap_threshold"][0] if "heatmap_threshold" in joined.columns else None
    colours = {"normal": "tab:blue", "anomalous": "tab:red"}
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    bins = np.linspace(peaks.min(), peaks.max(), 40)
    for name, values in groups.items():
        ax.hist(values, bins=bins, alpha=0.5, color=colours[name], label=f"{name} ({len(values)} frames)")
    if threshold is not None:
        ax.axvline(threshold, color="black", ls="--", lw=1, label=f"threshold {threshold:.2f} (μ+3σ)")
    ax.set_xlabel("heatmap peak per frame")
    ax.set_ylabel("frames")
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    hist = folder / "heatmap_histogram.png"
    fig.savefig(hist)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4.5, 3.2), dpi=110)
    parts = ax.violinplot(list(groups.values()), showmedians=True)
    for body, name in zip(parts["bodies"], groups, strict=True):
        body.set_facecolor(colours[name])
    ax.set_xticks(range(1, len(groups) + 1), list(groups))
    if threshold is not None:
        ax.axhline(threshold, color="black", ls="--", lw=1, label="threshold")
        ax.legend(fontsize=7, frameon=False)
    ax.set_ylabel("heatmap peak per frame")
    fig.tight_layout()
    violin = folder / "heatmap_violin.png"
    fig.savefig(violin)
    plt.close(fig)
    return [hist, violin]


def write_plots(joined: pl.DataFrame, metrics: Metrics, folder: Path) -> list[Path]:
    """roc.png, timeline_<video>.png for every video, the confusion matrices, and the heatmap
    distribution plots when the scores carry heatmap peaks."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = confusion_plots(metrics, folder)
    if "heatmap_peak" in joined.columns:
        paths += heatmap_distribution(joined, folder)
    if metrics.micro_auroc is not None:
        paths.append(roc_plot(joined, metrics.column, metrics, folder / "roc.png"))
    by_video = {v.video: v for v in metrics.videos}
    for (video,), part in joined.group_by(["video"], maintain_order=True):
        auroc = by_video[video].auroc
        title = f"video {video}" + (f" — AUROC {auroc:.3f}" if auroc is not None else " — single-class")
        paths.append(timeline(part, metrics.column, folder / f"timeline_{_safe(video)}.png", title))
    return paths
