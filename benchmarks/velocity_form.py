"""The fourth pre-registered pass (benchmarks/choices.md): AI-VAD with `velocity_position="auto"`
beside today's `"y"`, on one scene's kept store, as whole CLI runs (fit, score, eval).

For each recipe (weight-free: foreground regions, HOG crops; weighted: YOLOX-nano regions,
MobileNetV2 crops) it fits AI-VAD twice, `-p velocity_position=y` and `=auto`, naming the store's
entries so that a store holding both recipes' features is read as each recipe alone; prints the
micro AUROC (scikit-learn, from scores.parquet), the macro, and the form "auto" chose with its
held-out gain (nats per region) read back from the model file.

Usage: python benchmarks/velocity_form.py --scene ped1 --store DIR/ped1.zarr [--recipes weight-free,weighted]
Ped1 decides (test 01–18); Ped2 is run once afterwards and chooses nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scene import DATA, entry_hash, model_run

FORMS = ("y", "auto")


def recipe_params(store: Path, recipe: str) -> list[str]:
    """The entries one recipe reads, named (a kept store may hold both recipes' features)."""
    from vadctl.store import FeatureStore

    specs = FeatureStore(store, read_only=True).specs("train")
    if recipe == "weight-free":
        hog = next(s.hash for s, _ in specs.values() if s.name == "hog_regions")
        return [f"velocity_feature=velocity@{entry_hash(store, 'velocity', None)}", f"deep_feature=hog_regions@{hog}"]
    from vadctl.features.registry import build as build_featurizers

    velocity = entry_hash(store, "velocity", "yolox")
    crops = next(f for f in build_featurizers(["appearance_regions"]) if f.name == "appearance_regions")
    wanted = crops.get_params()  # today's defaults (112×112 crops, refresh 4)
    found = [
        s
        for s, _ in specs.values()
        if s.name == "appearance_regions" and all(s.params.get(k, object()) == v for k, v in wanted.items())
    ]
    if not found:
        raise SystemExit(f"{store}: no appearance_regions entry with today's default parameters {wanted}")
    return [f"velocity_feature=velocity@{velocity}", f"deep_feature=appearance_regions@{found[0].hash}"]


def chosen_form(model: Path) -> tuple[str, float | None]:
    from vadctl.models.files import read_header

    state = read_header(model)["state"]
    return state.get("velocity_position", "?"), state.get("velocity_position_gain")


def run_pass(doc: str, parameter: str, values: tuple[str, ...], read_back, describe) -> None:
    """A pre-registered pass's runs on one scene: for each recipe, AI-VAD fitted once per value of
    `parameter` (everything else default); `read_back(model file)` adds the fitted choice to the
    row, `describe(row)` says it on the printed line; rows go to OUT/summary.json."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", choices=("ped1", "ped2"), required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--recipes", default="weight-free,weighted")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    labels = DATA / args.scene / "labels.csv"
    out = args.out or Path(tempfile.mkdtemp(prefix=f"vadctl-{parameter}-{args.scene}-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for recipe in args.recipes.split(","):
        params = recipe_params(args.store, recipe)
        for value in values:
            label = f"{recipe} aivad {value}"
            row = model_run(label, "aivad", args.store, out, labels, *params, f"{parameter}={value}")
            row |= read_back(out / f"{label.replace(' ', '_')}.safetensors")
            rows.append(row)
            print(
                f"{args.scene} {label:<26} micro {row['micro_sklearn']:.4f}  macro {row['macro']:.4f}  "
                f"fit {row['fit_s']:.1f} s  {describe(row)}",
                flush=True,
            )
    (out / "summary.json").write_text(json.dumps(rows, indent=1))


def form_read_back(model: Path) -> dict:
    form, gain = chosen_form(model)
    return {"form": form, "gain": gain}


def form_described(row: dict) -> str:
    return f"form {row['form']}" + ("" if row["gain"] is None else f" (gain {row['gain']:+.4f} nats/region)")


def main() -> None:
    run_pass(__doc__, "velocity_position", FORMS, form_read_back, form_described)


if __name__ == "__main__":
    main()
