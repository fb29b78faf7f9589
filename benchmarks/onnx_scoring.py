"""Scoring Ped2's test split with torch and with onnxruntime, side by side in one run.

For each neural model (FFP from benchmarks/ped2_ffp.py; a scene-aware AE in reconstruction mode
fitted here on Ped2's single scene, since Ped2 has no scene labels):
  export   the scoring network to ONNX, parity on random inputs (max abs diff)
  network  the network alone on the same real batches, torch vs onnxruntime (median of repeats)
  score    `score_model` end to end (store reads, resizing, PSNR/error maps, boxes), both backends,
           alternating torch/onnx `--repeats` times; median seconds, ratio, max score difference
Writes benchmarks/out/onnx_scoring.json. Usage:
  python benchmarks/onnx_scoring.py [--repeats 3] [--scene-steps 300]

`--plovad MODEL` (a fitted plovad file, e.g. from benchmarks/ped2_weak.py) adds the PLOVAD-based
network's latency table, the seed's "inference time over number of frames": the network alone
(detection, class and heatmap outputs) on videos of 16 … 1,024 frames (16-frame snippets every 8
frames: 1 … 127 snippets), torch against onnxruntime, both on one CPU thread (what vadctl scoring
uses for this small network), median of `--latency-repeats` runs after a warm-up, alternating.
`--plovad-only` runs just that table (writes benchmarks/out/onnx_plovad_latency.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def network_batches(model, store) -> list[np.ndarray]:
    """The real input batches scoring feeds the network for the first test video."""
    from vadctl.models.ffp import Ffp, history_indices, to_unit
    from vadctl.models.sceneaware import gather, windows

    video = store.videos("test")[0].video_id
    if isinstance(model, Ffp):
        frames = model._frames(store, "test", video)
        targets = np.arange(model.history, len(frames))
        batches = []
        for start in range(0, len(targets), model.eval_batch_size):
            chunk = targets[start : start + model.eval_batch_size]
            x = frames[history_indices(chunk, model.history)]
            batches.append(to_unit(x.reshape(len(chunk), -1, model.resolution, model.resolution)))
        return batches
    vectors = (model._vectors(store, "test", video) - model.mean_) / model.scale_
    starts = windows(len(vectors), model.seq_len, model.score_stride)
    return [
        gather(vectors, starts[i : i + model.eval_batch_size], model.seq_len)
        for i in range(0, len(starts), model.eval_batch_size)
    ]


def compare(path: Path, store, repeats: int) -> dict:
    from vadctl.models.files import load_model
    from vadctl.scoring.onnx import OnnxBackend, export_onnx
    from vadctl.scoring.score import score_model

    loaded = load_model(path)
    report = export_onnx(loaded.model, path.with_suffix(".onnx"))
    model = loaded.model
    backend = OnnxBackend(report.path, model)
    batches = network_batches(model, store)
    net_times = {"torch": [], "onnx": []}
    for _ in range(repeats):
        model.use_backend(None)
        net_times["torch"].append(timed(lambda: [model.forward(b) for b in batches]))
        model.use_backend(backend)
        net_times["onnx"].append(timed(lambda: [model.forward(b) for b in batches]))
    model.use_backend(None)
    real_diff = max(float(np.abs(model.forward(b) - backend(b)).max()) for b in batches)
    score_times = {"torch": [], "onnx": []}
    tables = {}
    for _ in range(repeats):
        for name in ("torch", "onnx"):
            fresh = load_model(path)
            started = time.perf_counter()
            frames, regions = score_model(fresh, store, "test", backend=name, onnx_path=report.path)
            score_times[name].append(time.perf_counter() - started)
            tables[name] = (frames, regions)
    score_diff = float(np.abs(tables["torch"][0]["score"].to_numpy() - tables["onnx"][0]["score"].to_numpy()).max())
    med = {k: statistics.median(v) for k, v in score_times.items()}
    net = {k: statistics.median(v) for k, v in net_times.items()}
    return {
        "model": model.name,
        "params": {k: v for k, v in loaded.header["params"].items() if k in ("resolution", "base_channels", "d_model")},
        "parity_random_inputs_max_abs_diff": report.max_abs_diff,
        "parity_real_inputs_max_abs_diff": real_diff,
        "frames": len(tables["torch"][0]),
        "boxes": {k: len(t[1]) for k, t in tables.items()},
        "score_max_abs_diff": score_diff,
        "network_seconds_median": net,
        "network_inputs": int(sum(len(b) for b in batches)),
        "network_speedup_onnx": net["torch"] / net["onnx"],
        "score_seconds_median": med,
        "score_speedup_onnx": med["torch"] / med["onnx"],
        "score_seconds_all": score_times,
    }


LATENCY_FRAMES = (16, 32, 64, 128, 256, 512, 1024)


def plovad_latency(path: Path, repeats: int) -> dict:
    """Network latency of a plovad model, torch vs onnxruntime, over video lengths."""
    import torch

    from vadctl.models.files import load_model
    from vadctl.scoring.onnx import OnnxBackend, export_onnx

    model = load_model(path).model
    report = export_onnx(model, OUT / "onnx_plovad" / "plovad.onnx")
    backend = OnnxBackend(report.path, model, threads=1)
    rows = []
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for frames in LATENCY_FRAMES:
            snippets = max(1, (frames - 16) // 8 + 1)
            inputs = model.example_inputs(1)
            rng = np.random.default_rng(frames)
            cells = inputs["cells"]
            inputs["cells"] = rng.standard_normal((1, snippets, *cells.shape[2:])).astype(np.float32)
            if "appearance" in inputs:
                width = inputs["appearance"].shape[-1]
                inputs["appearance"] = rng.standard_normal((1, snippets, width)).astype(np.float32)
            times = {"torch": [], "onnx": []}
            for name in ("torch", "onnx"):  # warm-up
                model.use_backend(None if name == "torch" else backend)
                model.run_network(inputs)
            for _ in range(repeats):
                for name in ("torch", "onnx"):
                    model.use_backend(None if name == "torch" else backend)
                    times[name].append(timed(lambda inputs=inputs: model.run_network(inputs)))
            model.use_backend(None)
            reference = model.run_network(inputs)
            got = backend.run(inputs)
            diff = max(float(np.abs(a - b).max()) for a, b in zip(reference, got, strict=True))
            med = {k: statistics.median(v) * 1000 for k, v in times.items()}
            rows.append(
                {
                    "frames": frames,
                    "snippets": snippets,
                    "torch_ms": med["torch"],
                    "onnx_ms": med["onnx"],
                    "speedup": med["torch"] / med["onnx"],
                    "max_abs_diff": diff,
                }
            )
    finally:
        torch.set_num_threads(previous)
    return {"model": str(path), "export_parity_max_abs_diff": report.max_abs_diff, "rows": rows}


def print_latency(table: dict) -> None:
    print(f"plovad network latency, 1 thread each (export parity {table['export_parity_max_abs_diff']:.2g})")
    print(f"{'frames':>7} {'snippets':>9} {'torch ms':>9} {'onnx ms':>9} {'speed-up':>9} {'max diff':>9}")
    for r in table["rows"]:
        print(
            f"{r['frames']:>7} {r['snippets']:>9} {r['torch_ms']:9.3f} {r['onnx_ms']:9.3f} "
            f"{r['speedup']:8.2f}× {r['max_abs_diff']:9.1e}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", type=Path, default=HERE.parent / "stores" / "ped2.zarr")
    parser.add_argument("--ffp", type=Path, default=OUT / "ped2_ffp" / "ffp.safetensors")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scene-steps", type=int, default=300)
    parser.add_argument("--plovad", type=Path, default=None, help="a fitted plovad model for the latency table")
    parser.add_argument("--plovad-only", action="store_true", help="only the plovad latency table")
    parser.add_argument("--latency-repeats", type=int, default=30)
    args = parser.parse_args()
    latency = None
    if args.plovad is not None:
        latency = plovad_latency(args.plovad, args.latency_repeats)
        (OUT / "onnx_plovad_latency.json").write_text(json.dumps(latency, indent=2))
        print_latency(latency)
        if args.plovad_only:
            return 0
    if not args.ffp.is_file():
        print(f"error: {args.ffp}: no FFP model; run benchmarks/ped2_ffp.py first", file=sys.stderr)
        return 2
    import onnxruntime
    import torch

    from vadctl.models.fit import fit_model
    from vadctl.store import FeatureStore

    store = FeatureStore(args.store, read_only=True)
    scene_path = OUT / "onnx_scoring" / "sceneaware.safetensors"
    started = time.perf_counter()
    params = {"mode": "reconstruction", "steps": args.scene_steps, "device": "cpu"}
    fit_model(store, "sceneaware", params, "train", out=scene_path)
    scene_fit = time.perf_counter() - started
    results = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "onnxruntime": onnxruntime.__version__,
        },
        "sceneaware_fit_seconds": round(scene_fit, 1),
        "models": [compare(args.ffp, store, args.repeats), compare(scene_path, store, args.repeats)],
        "plovad_latency": latency,
    }
    (OUT / "onnx_scoring.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
