"""Frame-level evaluation against ground truth, by scikit-learn's metrics.

Micro AUROC pools all frames of all videos; macro AUROC averages per-video AUROCs over the
videos that hold both normal and anomalous frames (single-class videos have no AUROC; they are
listed, not averaged). Scores and labels must line up frame for frame: anything missing on either
side is an error that names it, never silently dropped.

Confusion matrices at the model's threshold: frames (flagged or not against the label) and
videos (a video is anomalous when any frame is labelled so; predicted anomalous by the model's own
video-level decision when it has one, as plovad's MIL head, else when any frame is flagged).
When labels.csv has a `class` column (the kind of each anomalous frame) and the model names
classes, a multi-class matrix over videos: true class = the class of its anomalous frames (`normal`
when it has none), predicted = the model's class for the video when flagged, else `normal`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score, roc_curve

from vadctl.errors import UsageError
from vadctl.video.labels import NORMAL, VERDICT_HEADER, VERDICTS

LABEL_CLASS = "label_class"  # labels.csv's optional `class`, renamed apart from the model's own `class`


def read_labels(path: Path) -> pl.DataFrame:
    """labels.csv with columns video, frame (0-based), label (1 = anomalous); ids stay strings.

    Every value is checked, not cast: a frame must be a whole number ≥ 0 and a label exactly 0 or 1
    (a 0.7 or a "yes" is an error naming its row, never truncated to 0)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give the labels CSV file")
    if not path.is_file():
        raise UsageError(f"{path}: no such labels file")
    try:
        labels = pl.read_csv(path, schema_overrides={"video": pl.String}, infer_schema_length=None)
    except pl.exceptions.NoDataError:
        raise UsageError(f"{path}: empty file (expected the header video,frame,label and a row per frame)") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot read: {error.strerror or error}") from None
    except Exception as error:
        raise UsageError(f"{path}: cannot read as CSV: {str(error).splitlines()[0][:200]}") from None
    if set(labels.columns) >= VERDICT_COLUMNS:
        labels = verdict_labels(labels, path)
    missing = {"video", "frame", "label"} - set(labels.columns)
    if missing:
        raise UsageError(f"{path}: needs columns video,frame,label (missing: {', '.join(sorted(missing))})")
    if labels.is_empty():
        raise UsageError(f"{path}: no rows (only a header)")
    columns = [
        pl.col("video"),
        _whole_column(labels, "frame", path, "a whole number ≥ 0", lambda v: v >= 0),
        _whole_column(labels, "label", path, "0 or 1", lambda v: v in (0, 1)),
    ]
    if "class" in labels.columns:
        columns.append(pl.col("class").cast(pl.String).alias(LABEL_CLASS))
    labels = labels.select(columns)
    if labels["video"].null_count():
        row = labels.with_row_index("row").filter(pl.col("video").is_null()).row(0, named=True)
        raise UsageError(f"{path}: row {row['row'] + 2}: the video id is empty")
    duplicated = labels.filter(labels.select("video", "frame").is_duplicated())
    if len(duplicated):
        row = duplicated.row(0, named=True)
        raise UsageError(f"{path}: video {row['video']} frame {row['frame']} is labelled more than once")
    return labels


VERDICT_COLUMNS = set(VERDICT_HEADER)
VERDICT_LABEL = VERDICTS  # the review page's verdicts, here as frame labels


def verdict_labels(verdicts: pl.DataFrame, path: Path) -> pl.DataFrame:
    """The review page's export (video,start_frame,end_frame,verdict) as frame labels: every frame of
    a false alarm is normal (0), of a reviewed event anomalous (1); other frames stay unlabelled
    (evaluate them with --partial)."""
    unknown = verdicts.filter(~pl.col("verdict").cast(pl.String).is_in(list(VERDICT_LABEL)))
    if len(unknown):
        raise UsageError(f"{path}: verdict {unknown['verdict'][0]!r}: expected one of {', '.join(VERDICT_LABEL)}")
    return (
        verdicts.select(
            pl.col("video").cast(pl.String),
            pl.int_ranges(pl.col("start_frame"), pl.col("end_frame") + 1).alias("frame"),
            pl.col("verdict").cast(pl.String).replace_strict(VERDICT_LABEL, return_dtype=pl.Int64).alias("label"),
        )
        .explode("frame")
        .unique(maintain_order=True)
    )  # two models' events over the same frames agree


def _whole_column(table: pl.DataFrame, column: str, path: Path, wanted: str, allowed) -> pl.Series:
    """A column as Int64 when every value is a whole number that `allowed` accepts, else an error
    naming the first bad row (CSV line numbers, header = line 1)."""
    values = table[column].to_list()
    whole = []
    for index, value in enumerate(values):
        number = value
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                number = None
        if isinstance(number, bool) or not isinstance(number, int | float) or number != number:
            number = None
        elif isinstance(number, float):
            number = int(number) if number.is_integer() else None
        if number is None or not allowed(number):
            video = table["video"][index]
            raise UsageError(f"{path}: line {index + 2} (video {video}): {column} {value!r} must be {wanted}")
        whole.append(number)
    return pl.Series(column, whole, dtype=pl.Int64)


def read_scores(path: Path, column: str = "score") -> pl.DataFrame:
    """A frame-scores Parquet file (from `vadctl score`) with the columns evaluation needs."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give the scores Parquet file")
    if not path.is_file():
        raise UsageError(f"{path}: no such scores file")
    try:
        table = pl.read_parquet(path)
    except Exception as error:
        raise UsageError(f"{path}: cannot read as Parquet: {error}") from None
    missing = {"video", "frame", column} - set(table.columns)
    if missing:
        raise UsageError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    return table


def align(scores: pl.DataFrame, labels: pl.DataFrame, partial: bool = False) -> tuple[pl.DataFrame, list[str]]:
    """Join scores and labels on (video, frame); mismatches are errors unless `partial`.

    Returns the joined table and notes on what was left out (only with `partial`).
    """
    notes = []
    score_videos, label_videos = set(scores["video"].unique()), set(labels["video"].unique())
    only_scores, only_labels = sorted(score_videos - label_videos), sorted(label_videos - score_videos)
    joined = scores.join(labels, on=["video", "frame"], how="inner")
    problems = []
    if only_labels:
        problems.append(f"videos labelled but not scored: {_few(only_labels)}")
    if only_scores:
        problems.append(f"videos scored but not labelled: {_few(only_scores)}")
    counts = (
        scores.group_by("video")
        .len("scored")
        .join(labels.group_by("video").len("labelled"), on="video")
        .join(joined.group_by("video").len("matched"), on="video", how="left")
        .fill_null(0)
        .filter((pl.col("scored") != pl.col("matched")) | (pl.col("labelled") != pl.col("matched")))
        .sort("video")
    )
    for row in counts.iter_rows(named=True):
        problems.append(
            f"video {row['video']}: {row['scored']} frames scored, {row['labelled']} labelled, {row['matched']} in both"
        )
    if problems and not partial:
        raise UsageError(
            "scores and labels do not line up: "
            + "; ".join(problems[:6])
            + (" …" if len(problems) > 6 else "")
            + " (pass --partial to evaluate what matches)"
        )
    notes.extend(problems)
    if joined.is_empty():
        raise UsageError("scores and labels share no (video, frame) pairs")
    return joined.sort("video", "frame"), notes


def _few(items: list[str], n: int = 5) -> str:
    return ", ".join(items[:n]) + (f" … ({len(items)} in all)" if len(items) > n else "")


@dataclass
class VideoMetrics:
    video: str
    frames: int
    anomalous: int
    auroc: float | None
    flagged: int


@dataclass
class Metrics:
    column: str
    frames: int
    anomalous: int
    micro_auroc: float | None
    macro_auroc: float | None
    macro_videos: int
    single_class_videos: list[str]
    average_precision: float | None
    eer: float | None
    confusion: dict[str, int] | None
    precision: float | None
    recall: float | None
    f1: float | None
    videos: list[VideoMetrics] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    video_confusion: dict[str, int] | None = None
    video_accuracy: float | None = None
    class_confusion: dict | None = None  # {"labels": [...], "matrix": [[true × predicted]]}
    class_accuracy: float | None = None  # over all videos, `normal` a class like the others
    class_accuracy_anomalous: float | None = None  # over anomalous videos: their class named right

    def to_dict(self) -> dict:
        """Plain JSON-able values; `ap` is average precision's short name."""
        return {**asdict(self), "ap": self.average_precision}


def equal_error_rate(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fpr[i] + fnr[i]) / 2)


def binary_confusion(truth: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(truth, predicted, labels=[0, 1]).ravel())
    return {"tn": tn, "fp": fp, "fn": fn, "tp": tp}


def video_truth(joined: pl.DataFrame) -> pl.DataFrame:
    """Per video: labelled anomalous (any frame), flagged (any frame), true and predicted class."""
    aggregations = [pl.col("label").max().alias("anomalous")]
    if "is_anomaly" in joined.columns:
        flagged = pl.col("is_anomaly").any()
        if "video_is_anomaly" in joined.columns:  # the model's own video-level decision, where it has one
            flagged = pl.coalesce(pl.col("video_is_anomaly").first(), flagged)
        aggregations.append(flagged.alias("flagged"))
    if LABEL_CLASS in joined.columns:
        named = pl.col(LABEL_CLASS).filter((pl.col("label") == 1) & pl.col(LABEL_CLASS).is_not_null())
        aggregations.append(named.mode().first().alias("true_class"))
    if "video_class" in joined.columns:
        aggregations.append(pl.col("video_class").first())
    return joined.group_by("video", maintain_order=True).agg(aggregations).sort("video")


def class_confusion(videos: pl.DataFrame) -> tuple[dict, float, float | None]:
    """(multi-class confusion over videos, accuracy over all, accuracy over anomalous videos)."""
    truth = [c if a and c else NORMAL for a, c in zip(videos["anomalous"], videos["true_class"], strict=True)]
    flagged = videos["flagged"].to_list() if "flagged" in videos.columns else [True] * len(videos)
    named = videos["video_class"].to_list()
    predicted = [c if f and c else NORMAL for f, c in zip(flagged, named, strict=True)]
    labels = [NORMAL, *sorted((set(truth) | set(predicted)) - {NORMAL})]
    matrix = confusion_matrix(truth, predicted, labels=labels).tolist()
    accuracy = float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)]))
    anomalous = [(t, c) for t, c in zip(truth, named, strict=True) if t != NORMAL]
    named_right = float(np.mean([t == c for t, c in anomalous])) if anomalous else None
    return {"labels": labels, "matrix": matrix}, accuracy, named_right


def evaluate(joined: pl.DataFrame, column: str = "score", notes: list[str] | None = None) -> Metrics:
    """All metrics on an aligned (video, frame, <column>, label[, is_anomaly]) table."""
    if column not in joined.columns:
        raise UsageError(f"scores have no column {column!r} (columns: {', '.join(joined.columns)})")
    y = joined["label"].to_numpy()
    s = joined[column].to_numpy().astype(np.float64)
    if not np.isfinite(s).all():
        raise UsageError(f"column {column!r} holds NaN or infinite scores")
    both = len(np.unique(y)) == 2
    per_video, aurocs, single = [], [], []
    for (video,), part in joined.group_by(["video"], maintain_order=True):
        yv, sv = part["label"].to_numpy(), part[column].to_numpy()
        auroc = float(roc_auc_score(yv, sv)) if len(np.unique(yv)) == 2 else None
        if auroc is None:
            single.append(video)
        else:
            aurocs.append(auroc)
        flagged = int(part["is_anomaly"].sum()) if "is_anomaly" in part.columns else 0
        per_video.append(VideoMetrics(video, len(part), int(yv.sum()), auroc, flagged))
    confusion = precision = recall = f1 = None
    video_confusion = video_accuracy = None
    per_video_truth = video_truth(joined)
    if "is_anomaly" in joined.columns:
        confusion = binary_confusion(y, joined["is_anomaly"].to_numpy().astype(int))
        fp, fn, tp = confusion["fp"], confusion["fn"], confusion["tp"]
        truth_v = per_video_truth["anomalous"].to_numpy().astype(int)
        video_confusion = binary_confusion(truth_v, per_video_truth["flagged"].to_numpy().astype(int))
        video_accuracy = (video_confusion["tp"] + video_confusion["tn"]) / len(truth_v)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    metrics = Metrics(
        column=column,
        frames=len(y),
        anomalous=int(y.sum()),
        micro_auroc=float(roc_auc_score(y, s)) if both else None,
        macro_auroc=float(np.mean(aurocs)) if aurocs else None,
        macro_videos=len(aurocs),
        single_class_videos=sorted(single),
        average_precision=float(average_precision_score(y, s)) if both else None,
        eer=equal_error_rate(y, s) if both else None,
        confusion=confusion,
        precision=precision,
        recall=recall,
        f1=f1,
        videos=per_video,
        notes=list(notes or []),
        video_confusion=video_confusion,
        video_accuracy=video_accuracy,
    )
    has_classes = LABEL_CLASS in joined.columns and joined[LABEL_CLASS].drop_nulls().len() > 0
    if has_classes and "video_class" in joined.columns:
        metrics.class_confusion, metrics.class_accuracy, metrics.class_accuracy_anomalous = class_confusion(
            per_video_truth
        )
    return metrics
