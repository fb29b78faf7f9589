"""Thresholds from held-out normal scores, kept as statistics so any rule applies later.

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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vadctl import defaults
from vadctl.errors import UsageError
from vadctl.models.scores import VideoScores

QUANTILE_STEPS = np.linspace(0.0, 100.0, 1001)


DEFAULT_RULE = defaults.THRESHOLD_RULE


RULES = ("robust", "sigma", "percentile")


GAUSSIAN_SIGMA_PERCENTILE = 84.134  # a Gaussian's μ + σ


MAX_FLAGGED = 0.10  # a threshold flagging more held-out normal frames than this is worth a warning


TAIL_SET = 10.0  # … and one this many σ̂ above their median was set by a tail, not by the bulk


RULE_HELP = "use robust:K (median + K·σ̂, σ̂ from the upper half), sigma:K (μ + Kσ) or percentile:P (0–100)"


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
