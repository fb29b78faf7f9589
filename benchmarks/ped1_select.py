"""The pre-registered selection on Ped1 (benchmarks/choices.md), stage by stage, as whole CLI runs.

Each stage fits and scores its candidates on Ped1 (train clips → test 01–18), computes the deciding
figure (micro AUROC with scikit-learn from scores.parquet) and picks the winner by choices.md's rule:
the best figure, candidates within 0.005 of it tied, and among tied ones the fewest parameters
changed from today's default (then the higher macro AUROC). Ped2 is not read here.

Usage: python benchmarks/ped1_select.py --store-dir DIR [--stages 1,2,3,4,5] [--out DIR]
The stores in DIR (made by `benchmarks/ped1.py --store-dir DIR`, or here) are reused; candidates of
extract-time stages get stores of their own beside them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scene import DATA, extract_both, model_run

HERE = Path(__file__).resolve().parent
TIE = 0.005
AIVAD_DEFAULTS = {
    "velocity_scale": "pixels",
    "velocity_position": "none",
    "n_components_velocity": 2,
    "n_neighbors_deep": 1,
    "smoothing_sigma": 3.0,
    "use_motion_features": False,
}
GRIDS = {
    "log (today)": [],
    "previous (0.5,1,2,4,8; raw)": ["-p", "motion.edges=[0.5,1,2,4,8]", "-p", "motion.hellinger=false"],
    "linear (0.5..8; raw)": ["-p", "motion.edges=[0.5,1,2,3,4,5,6,7,8]", "-p", "motion.hellinger=false"],
}
BOXES = {
    "area 100, overlap 0.65 (today)": [],
    "area 25, overlap 0.65": ["-p", "regions.min_bbox_area=25"],
    "area 100, overlap 0.6": ["-p", "regions.max_bbox_overlap=0.6"],
    "area 25, overlap 0.6": ["-p", "regions.min_bbox_area=25", "-p", "regions.max_bbox_overlap=0.6"],
}


def variant_store(base: Path, where: Path, data: Path, flags: list[str]) -> Path:
    """A copy of the base store extracted again with `flags`: entries whose parameters did not change
    (frames, flow) are reused, the changed ones are added beside the originals."""
    if not where.exists():
        shutil.copytree(base, where)
    extract_both(data, where, *flags)
    return where


def same(stored, wanted) -> bool:
    """Parameter values equal as numbers where they are numbers (JSON keeps 1 and 1.0 apart)."""
    if isinstance(stored, list | tuple) and isinstance(wanted, list | tuple):
        return len(stored) == len(wanted) and all(same(a, b) for a, b in zip(stored, wanted, strict=True))
    if isinstance(stored, int | float) and isinstance(wanted, int | float):
        return float(stored) == float(wanted)
    return stored == wanted


def entry_with(store: Path, name: str, **params) -> str:
    """NAME@HASH of the one entry of `name` in the train split whose parameters include `params`
    (numbers compared as numbers) and, given `regions=HASH`, whose regions upstream is that entry."""
    from vadctl.store import FeatureStore

    found = set()
    for spec, _ in FeatureStore(store, read_only=True).specs("train").values():
        if spec.name != name:
            continue
        upstream = spec.params.get("upstream", {}).get("regions")
        wanted = {k: v for k, v in params.items() if k != "regions"}
        if all(same(spec.params.get(k), v) for k, v in wanted.items()) and (
            "regions" not in params or upstream == params["regions"]
        ):
            found.add(spec.key)
    if len(found) != 1:
        raise SystemExit(f"{store}: expected one {name} entry with {params}, found {sorted(found)}")
    return found.pop()


def changed(params: dict, defaults: dict) -> int:
    return sum(1 for key, value in params.items() if defaults.get(key) != value)


def winner(rows: list[dict], defaults: dict) -> dict:
    """choices.md's rule: best micro; within TIE of it, fewest changes, then higher macro."""
    best = max(r["micro_sklearn"] for r in rows)
    tied = [r for r in rows if r["micro_sklearn"] >= best - TIE]
    return min(tied, key=lambda r: (changed(r["chosen"], defaults), -r["macro"]))


def run(label: str, model: str, store: Path, out: Path, labels: Path, params: dict, extra: list[str] = ()) -> dict:
    flags = [f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in params.items()]
    flags += [value for flag, value in zip(extra[::2], extra[1::2], strict=True) if flag == "-p"]
    row = model_run(label, model, store, out, labels, *flags)
    row["chosen"] = dict(params)
    print(f"  {label:<60} micro {row['micro_sklearn']:.4f}  macro {row['macro']:.4f}  fit {row['fit_s']:.0f} s")
    return row


def stage(number: int, title: str, rows: list[dict], defaults: dict, record: dict) -> dict:
    won = winner(rows, defaults)
    print(f"stage {number} winner: {won['recipe']} ({won['micro_sklearn']:.4f})")
    record[f"stage{number}"] = {"title": title, "rows": rows, "winner": won["recipe"], "chosen": won["chosen"]}
    return won


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA / "ped1")
    parser.add_argument("--store-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "ped1_select")
    parser.add_argument("--stages", default="1,2,3,4,5")
    args = parser.parse_args()
    stages = {int(s) for s in args.stages.split(",")}
    labels = args.data / "labels.csv"
    args.out.mkdir(parents=True, exist_ok=True)
    args.store_dir.mkdir(parents=True, exist_ok=True)
    store = args.store_dir / "ped1.zarr"
    extract_both(args.data, store)  # incremental: nothing to do when benchmarks/ped1.py made it
    record_file = args.out / "selection.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    chosen = dict(record.get("stage2", record.get("stage1", {})).get("chosen", AIVAD_DEFAULTS))

    if 1 in stages:
        print("stage 1: AI-VAD's velocity in the scene's geometry")
        rows = []
        geometry = [("pixels", "none"), ("pixels", "y"), ("pixels", "xy"), ("box_height", "none"), ("box_height", "y")]
        for (scale, position), components in itertools.product(geometry, (2, 4, 8)):
            params = {**AIVAD_DEFAULTS, "velocity_scale": scale, "velocity_position": position}
            params["n_components_velocity"] = components
            rows.append(run(f"aivad {scale} {position} k{components}", "aivad", store, args.out, labels, params))
        chosen = stage(1, "velocity geometry", rows, AIVAD_DEFAULTS, record)["chosen"]
        record_file.write_text(json.dumps(record, indent=2))

    if 2 in stages:
        print("stage 2: kNN k and smoothing")
        rows = []
        for k, sigma in itertools.product((1, 5), (3.0, 6.0)):
            params = {**chosen, "n_neighbors_deep": k, "smoothing_sigma": sigma}
            rows.append(run(f"aivad stage-1 winner, k {k}, sigma {sigma:g}", "aivad", store, args.out, labels, params))
        chosen = stage(2, "kNN k and smoothing", rows, AIVAD_DEFAULTS, record)["chosen"]
        record_file.write_text(json.dumps(record, indent=2))

    grid_store = store
    grid_store, grid_entry = store, None
    if 3 in stages:
        print("stage 3: FUVAS's motion grid")
        rows = []
        for index, (label, flags) in enumerate(GRIDS.items()):
            where = (
                store
                if not flags
                else variant_store(store, args.store_dir / f"ped1_grid{index}.zarr", args.data, flags)
            )
            edges = json.loads(flags[1].partition("=")[2]) if flags else None
            entry = entry_with(where, "motion", edges=edges) if flags else entry_with(store, "motion")
            row = run(f"fuvas, grid {label}", "fuvas", where, args.out, labels, {"feature": entry})
            row["chosen"], row["store"], row["entry"] = {"grid": label}, str(where), entry
            rows.append(row)
        won = stage(3, "motion grid", rows, {"grid": "log (today)"}, record)
        record_file.write_text(json.dumps(record, indent=2))
    if "stage3" in record:
        won = next(r for r in record["stage3"]["rows"] if r["recipe"] == record["stage3"]["winner"])
        grid_store, grid_entry = Path(won["store"]), won["entry"]

    if 4 in stages:
        print("stage 4: a frame-level motion attribute in AI-VAD")
        rows = []
        for flag in (False, True):
            params = {**chosen, "use_motion_features": flag}
            extra = ["-p", f"motion_feature={grid_entry}"] if flag and grid_entry else []
            extra += ["-p", f"velocity_feature={entry_with(grid_store, 'velocity')}"]
            rows.append(
                run(f"aivad stage-2 winner, motion {flag}", "aivad", grid_store, args.out, labels, params, extra)
            )
        chosen = stage(4, "motion attribute", rows, AIVAD_DEFAULTS, record)["chosen"]
        record_file.write_text(json.dumps(record, indent=2))
    elif "stage4" in record:
        chosen = record["stage4"]["chosen"]

    if 5 in stages:
        print("stage 5: box post-processing")
        rows = []
        base_regions = entry_with(grid_store, "regions")
        for index, (label, flags) in enumerate(BOXES.items()):
            where = grid_store
            regions = base_regions
            if flags:
                where = variant_store(grid_store, args.store_dir / f"ped1_boxes{index}.zarr", args.data, flags)
                values = dict(f.partition("=")[::2] for f in flags[1::2])
                wanted = {k.removeprefix("regions."): json.loads(v) for k, v in values.items()}
                regions = entry_with(where, "regions", **wanted)
            digest = regions.partition("@")[2]
            extra = ["-p", f"velocity_feature={entry_with(where, 'velocity', regions=digest)}"]
            extra += ["-p", f"deep_feature={entry_with(where, 'hog_regions', regions=digest)}"]
            if chosen.get("use_motion_features") and grid_entry:
                extra += ["-p", f"motion_feature={grid_entry}"]
            row = run(f"aivad stage-4 winner, {label}", "aivad", where, args.out, labels, chosen, extra)
            row["chosen"] = {**chosen, "boxes": label}
            rows.append(row)
        stage(5, "box post-processing", rows, {**AIVAD_DEFAULTS, "boxes": "area 100, overlap 0.65 (today)"}, record)
        record_file.write_text(json.dumps(record, indent=2))
    print(f"record: {record_file}")


if __name__ == "__main__":
    main()
