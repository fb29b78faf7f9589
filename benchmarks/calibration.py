"""Threshold rules measured on held-out *training* scores only: which one a heavy tail cannot blow up.

Every model is fitted on training videos; AI-VAD and FUVAS score each training video with a model
that never saw it (cross-fitting). Those held-out normal frame scores are all a threshold may be
calibrated on. Each candidate rule is judged leave-one-video-out: its threshold is computed from
the held-out scores of all training videos but one, and the share of the left-out video's frames
it flags is that video's false-positive rate (every training frame is normal). A good rule flags a
small, steady share of new normal videos: not 0 % because a few extreme frames pushed it out of
reach (the demo's AI-VAD: μ = 83.6, σ = 659 against a bulk below 2), not > 10 %.

Rules (K = 3):
  sigma      μ + Kσ                                  (the PLOVAD-based system's rule)
  mad        median + K · 1.4826 · MAD               (a Gaussian's σ from the median absolute deviation)
  robust     median + K · (q84.13 − median)          (a Gaussian's σ from its upper half; vadctl's robust:3)
  logsigma   μ + Kσ of log(s − min + (median − min)), mapped back
  trimmed    μ + Kσ of the scores below their 99th percentile
  p99        the 99th percentile
No test label is read. Usage: python benchmarks/calibration.py [--data ../shared/data/ped2] [--store S]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"
K = 3.0
Q84 = 84.134  # the Gaussian's μ + σ percentile


def rules() -> dict:
    def sigma(s):
        return s.mean() + K * s.std()

    def mad(s):
        median = np.median(s)
        return median + K * 1.4826 * np.median(np.abs(s - median))

    def qsigma(s):
        median = np.median(s)
        return median + K * (np.percentile(s, Q84) - median)

    def logsigma(s):
        low, median = s.min(), np.median(s)
        shift = max(median - low, 1e-12)
        x = np.log(s - low + shift)
        return np.exp(x.mean() + K * x.std()) + low - shift

    def trimmed(s):
        kept = s[s <= np.percentile(s, 99)]
        return kept.mean() + K * kept.std()

    def p99(s):
        return np.percentile(s, 99)

    return {"sigma": sigma, "mad": mad, "robust": qsigma, "logsigma": logsigma, "trimmed": trimmed, "p99": p99}


def heldout_scores(store_path: Path, model: str, params: dict) -> list[np.ndarray]:
    from vadctl.models.fit import fit_model
    from vadctl.store import FeatureStore

    fitted = fit_model(FeatureStore(store_path, read_only=True), model, params, "train")
    return [np.asarray(s.frame_scores, np.float64) for s in fitted.model.heldout_]


def judge(videos: list[np.ndarray]) -> dict:
    """Per rule: in-sample flagged share, leave-one-video-out FPR (mean, max, videos above 10 %),
    and the spread of the leave-one-out thresholds in units of the bulk's IQR."""
    everything = np.concatenate(videos)
    iqr = max(np.percentile(everything, 75) - np.percentile(everything, 25), 1e-12)
    out = {}
    for name, rule in rules().items():
        threshold = float(rule(everything))
        fprs, thresholds = [], []
        for i, video in enumerate(videos):
            others = np.concatenate([v for j, v in enumerate(videos) if j != i])
            t = rule(others)
            thresholds.append(t)
            fprs.append(float((video > t).mean()))
        out[name] = {
            "threshold": threshold,
            "flagged_in_sample": float((everything > threshold).mean()),
            "lovo_fpr_mean": float(np.mean(fprs)),
            "lovo_fpr_max": float(np.max(fprs)),
            "lovo_videos_over_10pct": int(np.sum(np.asarray(fprs) > 0.10)),
            "lovo_threshold_spread_iqr": float((max(thresholds) - min(thresholds)) / iqr),
        }
    return out


def describe(videos: list[np.ndarray]) -> dict:
    s = np.concatenate(videos)
    return {
        "videos": len(videos),
        "frames": len(s),
        "mean": float(s.mean()),
        "std": float(s.std()),
        "median": float(np.median(s)),
        "p99": float(np.percentile(s, 99)),
        "max": float(s.max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--store", type=Path, default=HERE.parent / "stores" / "ped2.zarr")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "calibration.json")
    args = parser.parse_args()
    from vadctl import demo

    cases: dict[str, list[np.ndarray]] = {}
    with tempfile.TemporaryDirectory(prefix="vadctl-cal-") as tmp:
        demo_store = Path(tmp) / "demo.zarr"
        demo.run(Path(tmp) / "demo", demo_store)  # generates and extracts; its test split is not used here
        for name, params in demo.DEMO_MODELS.items():
            cases[f"demo {name}"] = heldout_scores(demo_store, name, params)
    if args.store.exists():
        cases["ped2 aivad"] = heldout_scores(args.store, "aivad", {})
        cases["ped2 aivad (4 velocity bins)"] = heldout_scores(args.store, "aivad", {"n_velocity_bins": 4})
        cases["ped2 fuvas"] = heldout_scores(args.store, "fuvas", {})
    else:
        print(f"{args.store}: no Ped2 store (run `vadctl extract` on Ped2's train split into it); demo only")
    report = {case: {"scores": describe(v), "rules": judge(v)} for case, v in cases.items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    for case, item in report.items():
        d = item["scores"]
        print(
            f"\n{case}: {d['videos']} videos, {d['frames']} held-out frames; μ {d['mean']:.4g}, σ {d['std']:.4g}, "
            f"median {d['median']:.4g}, p99 {d['p99']:.4g}, max {d['max']:.4g}"
        )
        print(
            f"  {'rule':<9} {'threshold':>11} {'flagged':>8} {'LOVO FPR':>9} {'max':>7} {'>10%':>5} {'spread/IQR':>11}"
        )
        for name, r in item["rules"].items():
            print(
                f"  {name:<9} {r['threshold']:11.4g} {r['flagged_in_sample']:8.2%} {r['lovo_fpr_mean']:9.2%} "
                f"{r['lovo_fpr_max']:7.2%} {r['lovo_videos_over_10pct']:5d} {r['lovo_threshold_spread_iqr']:11.3g}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
