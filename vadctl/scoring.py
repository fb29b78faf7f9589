"""From model scores to what users read: smoothing, calibration, thresholds, Parquet tables.

The threshold follows the PLOVAD-based system, μ + 3σ of scores on normal frames held out from
fitting, with μ and σ read robustly: held-out normal scores are heavy-tailed as a rule (a video
unlike the others, a density model's extreme values), and a handful of extreme frames must not
lift the threshold out of reach. The default rule `robust:3` is median + 3·σ̂ with σ̂ = q84.13 −
median, the distance from the median to where a Gaussian's μ + σ lies: for Gaussian scores it is
μ + 3σ exactly; no tail thinner than 16 % of the frames can move it, and it follows the upper
half's spread, so right-skewed scores get a higher threshold than a MAD-based one gives (measured
against the alternatives, on held-out training scores only: `benchmarks/calibration.py`).
`sigma:K` (plain μ + Kσ) and `percentile:P` remain available. Calibration keeps μ, σ and the
quantiles of the held-out scores, so any rule can be applied later without the training data.
Labels of test data are never used here.

Tables: frames (one row per decoded frame), regions (one row per box), videos (one row per video:
is any frame flagged, and for models that name classes the video's class with its probabilities)
and events (one row per run of consecutive flagged frames, with the event's class where named).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from vadctl import defaults
from vadctl.atomic import write_atomic
from vadctl.errors import UsageError
from vadctl.results import ClassScores, VideoScores

QUANTILE_STEPS = np.linspace(0.0, 100.0, 1001)
DEFAULT_RULE = defaults.THRESHOLD_RULE
RULES = ("robust", "sigma", "percentile")
GAUSSIAN_SIGMA_PERCENTILE = 84.134  # a Gaussian's μ + σ
MAX_FLAGGED = 0.10  # a threshold flagging more held-out normal frames than this is worth a warning
TAIL_SET = 10.0  # … and one this many σ̂ above their median was set by a tail, not by the bulk
RULE_HELP = "use robust:K (median + K·σ̂, σ̂ from the upper half), sigma:K (μ + Kσ) or percentile:P (0–100)"


def temporal_smooth(scores: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time within one video (the caller never passes two videos at once)."""
    from scipy.ndimage import gaussian_filter1d  # here, so that commands that never smooth start fast

    if sigma <= 0 or len(scores) < 2:
        return np.asarray(scores, dtype=np.float64)
    return gaussian_filter1d(np.asarray(scores, dtype=np.float64), sigma, mode="nearest")


def parse_rule(rule: str) -> tuple[str, float]:
    """'robust:3' → ('robust', 3.0); 'sigma:3' → ('sigma', 3.0); 'percentile:99.5' → ('percentile', 99.5)."""
    kind, _, value = rule.partition(":")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"threshold {rule!r}: {RULE_HELP}") from None
    in_range = 0 <= number <= 100 if kind == "percentile" else 0 <= number < float("inf")
    if kind not in RULES or not in_range:
        raise UsageError(f"threshold {rule!r}: {RULE_HELP}")
    return kind, number


@dataclass
class Calibration:
    """Statistics of held-out normal frame scores: what "normal" looks like for one fitted model."""

    mean: float
    std: float
    quantiles: np.ndarray
    n_frames: int
    videos: list[str]
    method: str  # "crossfit" (every training video scored by a model that did not see it) or "holdout"
    rule: str = DEFAULT_RULE
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_scores(cls, scores: Sequence[VideoScores], method: str, rule: str = DEFAULT_RULE) -> Calibration:
        values = np.concatenate([s.frame_scores for s in scores]) if scores else np.zeros(0)
        values = values[np.isfinite(values)]
        if len(values) < 2:
            raise UsageError("calibration needs held-out normal frames; the training split is too small")
        parse_rule(rule)
        std = float(values.std())
        return cls(
            mean=float(values.mean()),
            std=std if std > 0 else 1e-12,
            quantiles=np.percentile(values, QUANTILE_STEPS),
            n_frames=len(values),
            videos=[s.video_id for s in scores],
            method=method,
            rule=rule,
        )

    def quantile(self, percent: float) -> float:
        return float(np.interp(percent, QUANTILE_STEPS, self.quantiles))

    @property
    def median(self) -> float:
        return self.quantile(50.0)

    @property
    def robust_std(self) -> float:
        """σ̂ = q84.13 − median: a Gaussian's σ, read from the upper half of the held-out scores."""
        spread = self.quantile(GAUSSIAN_SIGMA_PERCENTILE) - self.median
        return spread if spread > 0 else max(self.std, 1e-12)

    def centre_scale(self, rule: str | None = None) -> tuple[float, float]:
        """(centre, scale) of the rule's z-score: mean and σ for sigma:K, median and σ̂ otherwise."""
        kind, _ = parse_rule(rule or self.rule)
        return (self.mean, self.std) if kind == "sigma" else (self.median, self.robust_std)

    def threshold(self, rule: str | None = None) -> float:
        kind, number = parse_rule(rule or self.rule)
        if kind == "percentile":
            return self.quantile(number)
        centre, scale = self.centre_scale(rule)
        return centre + number * scale

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """z-score against held-out normal frames, in the rule's units: K means "at the threshold" of
        rule robust:K or sigma:K (3 for the default)."""
        centre, scale = self.centre_scale()
        return (np.asarray(scores, dtype=np.float64) - centre) / scale

    def flagged_share(self, rule: str | None = None) -> float:
        """Share of the held-out normal frames above the threshold (read from the stored quantiles)."""
        threshold = self.threshold(rule)
        if threshold >= self.quantiles[-1]:
            return 0.0
        return float(1 - np.interp(threshold, self.quantiles, QUANTILE_STEPS) / 100)

    def warnings(self, rule: str | None = None) -> list[str]:
        """One line per problem with this threshold on the held-out normal frames it came from."""
        threshold, share = self.threshold(rule), self.flagged_share(rule)
        top, median = float(self.quantiles[-1]), self.median
        rule = rule or self.rule
        if share > MAX_FLAGGED:
            return [
                f"threshold {rule} = {threshold:.6g} flags {share:.0%} of the {self.n_frames} held-out normal frames "
                f"(> {MAX_FLAGGED:.0%}): expect many false alarms; consider another rule (--threshold)"
            ]
        if share == 0 and threshold > top + max(top - median, 0.0):
            return [
                f"threshold {rule} = {threshold:.6g} lies far above every held-out normal score (max {top:.6g}, "
                f"median {median:.6g}): it may flag nothing; consider another rule (--threshold)"
            ]
        out_by = (threshold - median) / self.robust_std
        if out_by > TAIL_SET:
            return [
                f"threshold {rule} = {threshold:.6g} lies {out_by:,.0f} σ̂ above the median held-out normal score "
                f"({median:.6g}): a few extreme frames set it, so it may flag almost nothing; try --threshold robust:3"
            ]
        return []

    def to_meta(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "n_frames": self.n_frames,
            "videos": self.videos,
            "method": self.method,
            "rule": self.rule,
            "threshold": self.threshold(),
            "median": self.median,  # informational, for `vadctl models --file` and fit's report
            "robust_std": self.robust_std,
            "flagged": self.flagged_share(),
            "extra": self.extra,
        }

    @classmethod
    def from_meta(cls, meta: dict, quantiles: np.ndarray) -> Calibration:
        return cls(
            float(meta["mean"]),
            float(meta["std"]),
            np.asarray(quantiles, dtype=np.float64),
            int(meta["n_frames"]),
            list(meta["videos"]),
            str(meta["method"]),
            str(meta.get("rule", "sigma:3")),  # files written before robust calibration used μ + 3σ
            dict(meta.get("extra", {})),
        )


def frames_table(
    scores: Iterable[VideoScores], calibration: Calibration, model: str, rule: str | None = None
) -> pl.DataFrame:
    """One row per decoded frame: video, frame, score, score_norm, is_anomaly, threshold, model (+ extras)."""
    threshold = calibration.threshold(rule)
    parts = []
    for item in scores:
        n = len(item.frame_scores)
        columns = {
            "video": pl.Series([item.video_id] * n, dtype=pl.String),
            "frame": pl.Series(np.arange(n), dtype=pl.Int64),
            "score": pl.Series(item.frame_scores, dtype=pl.Float64),
            "score_norm": pl.Series(calibration.normalize(item.frame_scores), dtype=pl.Float64),
            "is_anomaly": pl.Series(item.frame_scores > threshold, dtype=pl.Boolean),
            "threshold": pl.Series([threshold] * n, dtype=pl.Float64),
            "model": pl.Series([model] * n, dtype=pl.String),
        }
        for name, values in item.extra.items():
            columns[name] = pl.Series(np.asarray(values, dtype=np.float64), dtype=pl.Float64)
        if item.classes is not None:
            columns |= _class_columns(item.classes, n)
        if item.video_score is not None:
            columns["video_score"] = pl.Series([float(item.video_score)] * n, dtype=pl.Float64)
            columns["video_is_anomaly"] = pl.Series([item.video_score > 0] * n, dtype=pl.Boolean)
        parts.append(pl.DataFrame(columns))
    if not parts:
        raise UsageError("nothing to score: the split has no videos with the model's features")
    return pl.concat(parts, how="diagonal")


def _class_columns(classes: ClassScores, n: int) -> dict[str, pl.Series]:
    """Per frame: the likeliest class and its probability; the video's class and probability."""
    names = np.asarray(classes.names, dtype=object)
    best = classes.frame_probs.argmax(axis=1)
    video_best = int(np.argmax(classes.video_probs))
    return {
        "class": pl.Series(names[best].tolist(), dtype=pl.String),
        "class_prob": pl.Series(classes.frame_probs[np.arange(n), best], dtype=pl.Float64),
        "video_class": pl.Series([str(names[video_best])] * n, dtype=pl.String),
        "video_class_prob": pl.Series([float(classes.video_probs[video_best])] * n, dtype=pl.Float64),
    }


def _probabilities(names: Sequence[str], probs: np.ndarray) -> pl.Series:
    """A struct column {class: probability}, one row per row of `probs`."""
    return pl.DataFrame({name: np.asarray(probs[:, i], np.float64) for i, name in enumerate(names)}).to_struct(
        "class_probs"
    )


def flagged_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame ranges of consecutive True values (events with no merging: the scores
    file's table; `vadctl events` merges across gaps with the same run finder)."""
    from vadctl.events import anomalous_runs

    runs = anomalous_runs(np.arange(len(flags)), np.asarray(flags, dtype=bool), min_len=1, min_gap=1)
    return [(first, last + 1) for first, last in runs]


def videos_table(scores: Sequence[VideoScores], frames: pl.DataFrame) -> pl.DataFrame:
    """One row per video: frames, peak score, flagged frames, is_anomaly (the model's own video-level
    decision when it has one, else: any frame flagged), and for models that name classes its class,
    that class's probability and every class's (`class_probs`)."""
    own = "video_is_anomaly" in frames.columns
    flagged = pl.col("is_anomaly").any()
    decision = pl.coalesce(pl.col("video_is_anomaly").first(), flagged) if own else flagged
    aggregations = [
        pl.len().alias("frames"),
        pl.col("score").max().alias("peak_score"),
        pl.col("is_anomaly").sum().cast(pl.Int64).alias("flagged_frames"),
        decision.alias("is_anomaly"),
        pl.col("model").first(),
    ]
    if own:
        aggregations.insert(1, pl.col("video_score").first())
    summary = frames.group_by("video", maintain_order=True).agg(aggregations).sort("video")
    named = [s for s in scores if s.classes is not None]
    if not named:
        return summary
    names = named[0].classes.names
    probs = np.stack([s.classes.video_probs for s in named])
    best = probs.argmax(axis=1)
    classes = pl.DataFrame(
        {
            "video": [s.video_id for s in named],
            "class": [names[i] for i in best],
            "class_prob": probs[np.arange(len(named)), best],
        }
    ).with_columns(_probabilities(names, probs))
    return summary.join(classes, on="video", how="left")


def events_table(scores: Sequence[VideoScores], frames: pl.DataFrame) -> pl.DataFrame:
    """One row per event (a run of consecutive flagged frames of one video): its frames, peak and
    mean score, and for models that name classes its class (mean frame probabilities over the run)."""
    by_video = {s.video_id: s for s in scores}
    rows: dict[str, list] = {k: [] for k in ("video", "event", "start_frame", "stop_frame", "peak_score", "mean_score")}
    probs, names = [], None
    for (video,), part in frames.group_by(["video"], maintain_order=True):
        values = part["score"].to_numpy()
        item = by_video.get(video)
        for event, (start, stop) in enumerate(flagged_runs(part["is_anomaly"].to_numpy())):
            rows["video"].append(video)
            rows["event"].append(event)
            rows["start_frame"].append(start)
            rows["stop_frame"].append(stop)
            rows["peak_score"].append(float(values[start:stop].max()))
            rows["mean_score"].append(float(values[start:stop].mean()))
            if item is not None and item.classes is not None:
                names = item.classes.names
                probs.append(item.classes.frame_probs[start:stop].mean(axis=0))
    schema = {"video": pl.String, "event": pl.Int64, "start_frame": pl.Int64, "stop_frame": pl.Int64}
    schema |= {"peak_score": pl.Float64, "mean_score": pl.Float64}
    table = pl.DataFrame(rows, schema=schema)
    if names is None or len(probs) != len(table):
        return table
    stacked = np.stack(probs)
    best = stacked.argmax(axis=1)
    return table.with_columns(
        pl.Series("class", [names[i] for i in best], dtype=pl.String),
        pl.Series("class_prob", stacked[np.arange(len(best)), best], dtype=pl.Float64),
        _probabilities(names, stacked),
    )


def regions_table(scores: Iterable[VideoScores], calibration: Calibration | None = None) -> pl.DataFrame:
    """One row per scored box: video, frame, x1, y1, x2, y2, score."""
    parts = []
    for item in scores:
        regions = item.regions
        if regions is None or len(regions.frame) == 0:
            continue
        boxes = np.asarray(regions.boxes, dtype=np.float32)
        parts.append(
            pl.DataFrame(
                {
                    "video": pl.Series([item.video_id] * len(regions.frame), dtype=pl.String),
                    "frame": pl.Series(regions.frame, dtype=pl.Int64),
                    "x1": boxes[:, 0],
                    "y1": boxes[:, 1],
                    "x2": boxes[:, 2],
                    "y2": boxes[:, 3],
                    "score": pl.Series(regions.score, dtype=pl.Float64),
                }
            )
        )
    if not parts:
        schema = {"video": pl.String, "frame": pl.Int64, "x1": pl.Float32, "y1": pl.Float32, "x2": pl.Float32}
        schema |= {"y2": pl.Float32, "score": pl.Float64}
        return pl.DataFrame(schema=schema)
    return pl.concat(parts)


def write_parquet_atomic(table: pl.DataFrame, path: Path, metadata: Mapping[str, str] | None = None) -> Path:
    """Write beside the target, then rename: a killed run never leaves half a file at `path`.

    `metadata` becomes the file's Parquet key-value metadata (provenance)."""
    return write_atomic(path, lambda tmp: table.write_parquet(tmp, metadata=dict(metadata) if metadata else None))
