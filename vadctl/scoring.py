"""From model scores to what users read: smoothing, calibration, thresholds, Parquet tables.

The threshold follows the PLOVAD-based system: μ + 3σ of scores on normal frames held out from
fitting. Calibration keeps μ, σ and the quantiles of those held-out scores, so any rule
("sigma:K" or "percentile:P") can be applied later without the training data. Labels of test
data are never used here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
from scipy.ndimage import gaussian_filter1d

from vadctl import defaults
from vadctl.atomic import write_atomic
from vadctl.errors import UsageError
from vadctl.results import VideoScores

QUANTILE_STEPS = np.linspace(0.0, 100.0, 1001)
DEFAULT_RULE = defaults.THRESHOLD_RULE


def temporal_smooth(scores: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time within one video (the caller never passes two videos at once)."""
    if sigma <= 0 or len(scores) < 2:
        return np.asarray(scores, dtype=np.float64)
    return gaussian_filter1d(np.asarray(scores, dtype=np.float64), sigma, mode="nearest")


def parse_rule(rule: str) -> tuple[str, float]:
    """'sigma:3' → ('sigma', 3.0); 'percentile:99.5' → ('percentile', 99.5)."""
    kind, _, value = rule.partition(":")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"threshold {rule!r}: use sigma:K (μ+Kσ) or percentile:P (0–100)") from None
    in_range = 0 <= number <= 100 if kind == "percentile" else 0 <= number < float("inf")
    if kind not in ("sigma", "percentile") or not in_range:
        raise UsageError(f"threshold {rule!r}: use sigma:K (μ+Kσ, K ≥ 0) or percentile:P (0–100)")
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

    def threshold(self, rule: str | None = None) -> float:
        kind, number = parse_rule(rule or self.rule)
        if kind == "sigma":
            return self.mean + number * self.std
        return float(np.interp(number, QUANTILE_STEPS, self.quantiles))

    def normalize(self, scores: np.ndarray) -> np.ndarray:
        """z-score against held-out normal frames: 3 means "at the μ+3σ threshold"."""
        return (np.asarray(scores, dtype=np.float64) - self.mean) / self.std

    def to_meta(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "n_frames": self.n_frames,
            "videos": self.videos,
            "method": self.method,
            "rule": self.rule,
            "threshold": self.threshold(),
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
            str(meta.get("rule", DEFAULT_RULE)),
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
        parts.append(pl.DataFrame(columns))
    if not parts:
        raise UsageError("nothing to score: the split has no videos with the model's features")
    return pl.concat(parts, how="diagonal")


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


def write_parquet_atomic(table: pl.DataFrame, path: Path) -> Path:
    """Write beside the target, then rename: a killed run never leaves half a file at `path`."""
    return write_atomic(path, table.write_parquet)
