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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from velocity_form import run_pass

COUNTS = ("2", "auto")


def chosen_count(model: Path) -> dict:
    from vadctl.models.files import read_header

    state = read_header(model)["state"]
    return {"count": state.get("n_components_velocity"), "loglik": state.get("n_components_velocity_loglik") or {}}


def described(row: dict) -> str:
    likelihood = ", ".join(f"k{k} {v:.4f}" for k, v in row["loglik"].items())
    return f"k {row['count']}" + (f"  (held-out {likelihood})" if likelihood else "")


def main() -> None:
    run_pass(__doc__, "n_components_velocity", COUNTS, chosen_count, described)


if __name__ == "__main__":
    main()
