"""The fifth pre-registered pass (benchmarks/choices.md): AI-VAD with `n_components_velocity="auto"`
beside today's 2, on one scene's kept store, as whole CLI runs (fit, score, eval).

For each recipe (weight-free: foreground regions, HOG crops; weighted: YOLOX-nano regions,
MobileNetV2 crops) it fits AI-VAD twice, `-p n_components_velocity=2` and `=auto` (everything else
default), naming the store's entries as `velocity_form.py` does; prints the micro AUROC
(scikit-learn, from scores.parquet), the macro, and the count "auto" chose with each candidate's
held-out log-likelihood (nats per region) read back from the model file.

Usage: python benchmarks/velocity_components.py --scene ped1 --store DIR/ped1.zarr [--recipes weight-free,weighted]
Ped1 decides (test 01–18); Ped2 is run once afterwards and chooses nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scene import DATA, model_run
from velocity_form import recipe_params

COUNTS = ("2", "auto")


def chosen_count(model: Path) -> tuple[int | None, dict]:
    from vadctl.models.files import read_header

    state = read_header(model)["state"]
    return state.get("n_components_velocity"), state.get("n_components_velocity_loglik") or {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", choices=("ped1", "ped2"), required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--recipes", default="weight-free,weighted")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    labels = DATA / args.scene / "labels.csv"
    out = args.out or Path(tempfile.mkdtemp(prefix=f"vadctl-components-{args.scene}-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for recipe in args.recipes.split(","):
        params = recipe_params(args.store, recipe)
        for count in COUNTS:
            label = f"{recipe} aivad k{count}"
            row = model_run(label, "aivad", args.store, out, labels, *params, f"n_components_velocity={count}")
            row["count"], row["loglik"] = chosen_count(out / f"{label.replace(' ', '_')}.safetensors")
            rows.append(row)
            likelihood = ", ".join(f"k{k} {v:.4f}" for k, v in row["loglik"].items())
            print(
                f"{args.scene} {label:<26} micro {row['micro_sklearn']:.4f}  macro {row['macro']:.4f}  "
                f"k {row['count']}  fit {row['fit_s']:.1f} s" + (f"  (held-out {likelihood})" if likelihood else ""),
                flush=True,
            )
    (out / "summary.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
