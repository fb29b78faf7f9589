"""The built-in demo (`vadctl demo`'s synthetic walkway, its own generated labels): does each model
flag its anomalies at its threshold, and what the calibration rule and the `motion` embedding do.

For AI-VAD (4 velocity bins, as the demo runs it) and FUVAS (on `motion`), each under the rules
`sigma:3` (plain μ + 3σ of held-out normal scores) and `robust:3` (median + 3·σ̂, the default):
frame AUROC, recall on anomalous frames and false-positive rate on normal ones at the threshold,
and the share of held-out normal training frames the threshold flags. FUVAS also runs on `motion`
extracted with `hellinger=false` (raw fractions), beside the default square-rooted fractions.
Everything runs through `vadctl.api` as the demo does. This is the demo's synthetic data, not a
benchmark data set; nothing here is used for Ped2. Usage: python benchmarks/demo.py [--frames 120]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def at_threshold(scores: Path, labels: Path) -> tuple[float, float]:
    """(recall on anomalous frames, false-positive rate on normal frames) of the is_anomaly column."""
    import polars as pl

    joined = pl.read_parquet(scores).join(
        pl.read_csv(labels, schema_overrides={"video": pl.String}), on=["video", "frame"]
    )
    anomalous = joined.filter(pl.col("label") == 1)["is_anomaly"].mean()
    normal = joined.filter(pl.col("label") == 0)["is_anomaly"].mean()
    return float(anomalous), float(normal)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "demo.json")
    args = parser.parse_args()
    from vadctl import api, demo
    from vadctl.models.files import load_model

    rows = []
    with tempfile.TemporaryDirectory(prefix="vadctl-demo-bench-") as tmp:
        root, store = Path(tmp) / "demo", Path(tmp) / "demo.zarr"
        result = demo.run(root, store, n_frames=args.frames)
        labels = result.data.labels
        for split, folder in (("train", result.data.train), ("test", result.data.test)):
            api.extract([folder], store, split, ["motion"], ["motion.hellinger=false"])
        fs = api.open_store(store)
        raw = next(s for s, _ in fs.specs("train").values() if s.name == "motion" and not s.params["hellinger"])
        cases = [
            ("aivad", "motion (Hellinger)", demo.DEMO_MODELS["aivad"]),
            ("fuvas", "motion (Hellinger)", {}),
            ("fuvas", "motion (raw fractions)", {"feature": f"motion@{raw.hash}"}),
        ]
        for model, feature, params in cases:
            path = api.fit(model, store, Path(tmp) / f"{model}-{len(rows)}.safetensors", params)
            calibration = load_model(path).calibration
            for rule in ("sigma:3", "robust:3"):
                scores = api.score(path, store, "test", Path(tmp) / f"s-{len(rows)}.parquet", threshold=rule)
                metrics = api.evaluate(scores, labels)
                recall, fpr = at_threshold(scores, labels)
                rows.append(
                    {
                        "model": model,
                        "feature": feature if model == "fuvas" else "velocity (4 bins)",
                        "rule": rule,
                        "threshold": calibration.threshold(rule),
                        "heldout_flagged": calibration.flagged_share(rule),
                        "micro_auroc": metrics["micro_auroc"],
                        "recall": recall,
                        "fpr": fpr,
                        "heldout_mean": calibration.mean,
                        "heldout_std": calibration.std,
                        "heldout_median": calibration.median,
                    }
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print(f"demo scene, {args.frames}-frame videos (8 train, 4 test: normal, fast, against the flow, loiter)")
    head = ("model", "feature", "rule", "threshold", "held-out flagged", "micro AUROC", "recall", "FPR")
    print("{:<6} {:<24} {:<9} {:>10} {:>16} {:>11} {:>7} {:>6}".format(*head))
    for r in rows:
        print(
            f"{r['model']:<6} {r['feature']:<24} {r['rule']:<9} {r['threshold']:10.4g} {r['heldout_flagged']:16.1%} "
            f"{r['micro_auroc']:11.4f} {r['recall']:7.2f} {r['fpr']:6.2f}"
        )
    aivad = rows[0]
    print(
        f"AI-VAD held-out normal scores: μ {aivad['heldout_mean']:.4g}, σ {aivad['heldout_std']:.4g}, "
        f"median {aivad['heldout_median']:.4g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
