"""Deep featurizers: bare model forward throughput against `vadctl extract` throughput, same frames, one run.

For each deep featurizer, on the same frames of a Ped2 clip:
  bare     the model's forward pass alone, on inputs decoded, cropped and preprocessed beforehand,
           in the batches vadctl uses (what the hardware gives the model)
  extract  vadctl's Extractor, as `vadctl extract` runs it: decode (background thread), upstream
           featurizers, preprocessing, forward, store writes and commit, into a fresh store
  ratio    extract / bare (goal ≥ 0.9: the model is never waiting)
The model is loaded, and warmed up by one untimed bare pass, before timing. Bare and extract
alternate `--repeats` times, in alternating order; each pair gives a ratio and the median is
reported, with the best rate of each (other processes on a shared machine slow whichever pass
they overlap, so single figures are noisy). Weights are random with the real architectures
(vadctl never downloads weights; compute does not depend on their values), saved to a temporary
weights folder and loaded through vadctl's resolver like real files; the YOLOX-nano detector
(`yolox`: `regions` with `detector=yolox`) is the real ONNX file of ../shared/weights, skipped with a
message where it is absent. `appearance`/`appearance_regions` run MobileNetV2 through onnxruntime
(their default on CPU); their bare pass is onnxruntime on the preprocessed images.

  python benchmarks/featurize.py [--video ../shared/data/ped2/train/01.mp4] [--frames 64]
      [--features clip,clip_regions,x3d,pose,raft,yolox,appearance,appearance_regions]
      [--clip-model ViT-B-32] [--json out.json]

  python benchmarks/featurize.py --recipe weighted [--videos 01,02,03] [--repeats 3] [--json out.json]
      [-p appearance_regions.size=112 ...] [--before CHECKOUT_OF_TODAYS_MAIN]
      the README's weighted recipe (YOLOX-nano + MobileNetV2 crops, real weights) part by part, its
      pipeline limit and the whole `vadctl extract` against it (benchmarks/weighted_parts.py)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors.torch import save_file

HERE = Path(__file__).resolve().parent
DEFAULT_VIDEO = HERE.parent.parent / "shared" / "data" / "ped2" / "train" / "01.mp4"
UNITS = {
    "clip": "frames",
    "clip_regions": "regions",
    "x3d": "clips",
    "pose": "regions",
    "raft": "pairs",
    "yolox": "frames",
    "appearance": "frames",
    "appearance_regions": "regions",
}
FEATURE_OF = {"raft": "flow", "yolox": "regions"}  # benchmark name → the feature it extracts
SHARED_WEIGHTS = HERE.parent.parent / "shared" / "weights"
YOLOX_FILE = SHARED_WEIGHTS / "yolox_nano.onnx"  # the only detector weights here; read in place, never copied


def trimmed_copy(video: Path, n_frames: int, folder: Path) -> Path:
    """The first frames of a video as a lossless file: every stage sees exactly these frames."""
    from vadctl.video.catalog import discover
    from vadctl.video.reader import VideoReader

    reader = VideoReader(discover([video])[0])
    frames = next(reader.windows(min(n_frames, reader.info.n_frames))).frames
    out = folder / "videos" / f"{video.stem}.avi"
    out.parent.mkdir(parents=True)
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"FFV1"), reader.info.fps, (w, h), True)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return out


def save_random(state: dict, path: Path) -> Path:
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(path))
    return path


def random_weights(folder: Path, features: list[str], clip_model: str) -> dict[str, Path]:
    """Random weights of the real architectures, under the names vadctl looks for."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    paths = {}
    if {"clip", "clip_regions"} & set(features):
        from vadctl.features.clip_model import _architecture

        model = _architecture("clip", clip_model, "openai", "cpu")
        paths["clip"] = save_random(model.state_dict(), folder / f"clip-{clip_model}-openai.safetensors")
    if "x3d" in features:
        from vadctl.features.x3d import build_network

        paths["x3d"] = save_random(build_network("x3d_s").state_dict(), folder / "x3d-x3d_s.safetensors")
    if "raft" in features:
        from vadctl.backbones import raft

        paths["raft_small"] = save_random(raft.build("raft_small").state_dict(), folder / "raft_small.safetensors")
    if {"appearance", "appearance_regions"} & set(features):
        from vadctl.features.appearance_model import build_trunk

        trunk = build_trunk("appearance", "mobilenet_v2")
        paths["mobilenet_v2"] = save_random(trunk.state_dict(), folder / "mobilenet_v2.safetensors")
    if "yolox" in features:
        (folder / "yolox.onnx").symlink_to(YOLOX_FILE)
        paths["yolox"] = folder / "yolox.onnx"
    return paths


def params_for(name: str, clip_model: str) -> dict:
    if name == "raft":
        return {"flow": {"method": "raft_small"}}
    if name == "yolox":
        return {"regions": {"detector": "yolox"}}
    params = {"clip": {"model": clip_model}, "clip_regions": {"model": clip_model}}.get(name, {})
    return {name: params} if params else {}


def featurizers_for(name: str, clip_model: str):
    from vadctl.features import build

    feature = FEATURE_OF.get(name, name)
    return build([feature], params_for(name, clip_model)), feature


# ----- bare forward passes: inputs prepared first, only the model timed -----------------------------------
def all_windows(video: Path):
    from vadctl.video.catalog import discover
    from vadctl.video.reader import VideoReader

    return list(VideoReader(discover([video])[0]).windows(32))


def regions_of(windows, featurizers):
    from vadctl.common.specs import ClipSpec

    regions = next(f for f in featurizers if f.name == "regions")
    regions.begin(None, ClipSpec())
    return [regions.process(w, {}).memory["boxes"] for w in windows]


def bare(name: str, featurizer, featurizers, windows, info, clips) -> tuple[int, float]:
    """(units, seconds) of the model's forward passes alone."""
    from vadctl.features.clip_model import crop

    if name == "clip":
        enc = featurizer.encoder
        batches = [
            enc.prepare_frames(w.frames[i : i + featurizer.batch_size])
            for w in windows
            for i in range(0, len(w), featurizer.batch_size)
        ]
        return timed(batches, enc.forward)
    if name == "clip_regions":
        enc = featurizer.encoder
        crops = [
            crop(f, b)
            for w, boxes in zip(windows, regions_of(windows, featurizers), strict=True)
            for f, bs in zip(w.frames, boxes, strict=True)
            for b in bs
        ]
        batches = [
            enc.prepare_crops(crops[i : i + featurizer.batch_size]) for i in range(0, len(crops), featurizer.batch_size)
        ]
        return timed(batches, enc.forward)
    if name == "x3d":
        featurizer.begin(info, clips)
        frames = np.concatenate([w.frames for w in windows])
        prepared = featurizer._preprocess(frames)
        table = clips.table(len(frames))
        tensors = [
            torch.stack([prepared[int(i)] for i in clips.frame_indices(int(s), len(frames))], dim=1) for s, _ in table
        ]
        batches = [
            torch.stack(tensors[i : i + featurizer.batch_size]) for i in range(0, len(tensors), featurizer.batch_size)
        ]
        return timed(batches, featurizer._forward)
    if name == "pose":
        from vadctl.features.pose import MIN_SIDE, widened

        jobs = []
        for w, boxes in zip(windows, regions_of(windows, featurizers), strict=True):
            for frame, bs in zip(w.frames, boxes, strict=True):
                for box in bs:
                    x1, y1, x2, y2 = widened(box, featurizer.margin, *frame.shape[:2])
                    pixels = frame[y1:y2, x1:x2]
                    scale = max(1.0, MIN_SIDE / max(pixels.shape[:2]))
                    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
                    jobs.append(np.ascontiguousarray(cv2.resize(pixels, size, interpolation=cv2.INTER_LINEAR)))
        featurizer.begin(info, clips)
        return timed(jobs, featurizer._model.process)
    if name == "raft":
        engine = featurizer._raft
        frames = np.concatenate([w.frames for w in windows])
        pairs = list(itertools.pairwise(frames))
        batches = [engine._prepare(pairs[i : i + engine.batch_size]) for i in range(0, len(pairs), engine.batch_size)]
        return timed(batches, engine._run)
    if name == "yolox":
        model = featurizer._detector.model
        frames = np.concatenate([w.frames for w in windows])
        batches = [model.prepare(frames[i : i + model.batch_size])[0] for i in range(0, len(frames), model.batch_size)]
        return timed(batches, model._run)
    if name in ("appearance", "appearance_regions"):
        return timed(appearance_batches(name, featurizer, featurizers, windows), featurizer.encoder.forward)
    raise ValueError(name)


def appearance_batches(name: str, featurizer, featurizers, windows) -> list[np.ndarray]:
    """The backbone's input batches, preprocessed as the featurizer does (frames or region crops)."""
    from vadctl.features import appearance_model as am

    size, step = featurizer.size, featurizer.batch_size
    if name == "appearance":
        images = [am.frame_input(f, size) for w in windows for f in w.frames]
    else:
        images = [
            am.crop_input(f, b, size)
            for w, boxes in zip(windows, regions_of(windows, featurizers), strict=True)
            for f, bs in zip(w.frames, boxes, strict=True)
            for b in bs
        ]
    return [np.stack(images[i : i + step]) for i in range(0, len(images), step)]


def torch_encoder(featurizer):
    """The same backbone and weights in eager torch (runtime=torch), for the onnxruntime comparison."""
    from vadctl.backbones.torch_compat import device
    from vadctl.features import appearance_model as am

    return am.TorchEncoder(featurizer.name, featurizer.backbone, featurizer.resolved_weights(), device("cpu"))


def timed(batches, forward) -> tuple[int, float]:
    started = time.perf_counter()
    units = 0
    for batch in batches:
        out = forward(batch)
        units += len(out) if hasattr(out, "__len__") and not hasattr(out, "pose_landmarks") else 1
    return units, time.perf_counter() - started


# ----- the extract path -----------------------------------------------------------------------------------
def extract(name: str, params: dict, video: Path, store: Path) -> tuple[int, float]:
    """The extract path as users run it (`vadctl.api.extract`); the model itself was loaded by the
    warm-up (models are loaded once per process), so as in `bare` it is not timed."""
    from vadctl import api
    from vadctl.common.specs import FeatureSpec

    requested = [FEATURE_OF.get(name, name)]
    report = api.extract([video.parent], store, "train", requested, params, force=True)
    result = report.results[0]
    if result.status != "extracted":
        raise SystemExit(f"{name}: extract failed: {result.error}")
    fs = api.open_store(store)
    record = fs.video("train", result.video_id)
    key = next(k for k in result.written if k.startswith(requested[0] + "@"))
    entry = fs.entry(record, FeatureSpec.from_dict(record.features[key]))
    units = int(entry.summary["index"] if name == "yolox" else entry.summary.get("rows", entry.summary["index"]))
    if name == "raft":
        units -= 1  # frame 0 has no pair
    return units, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--features", default="clip,clip_regions,x3d,pose,raft")
    parser.add_argument("--clip-model", default="ViT-B-32")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--recipe", choices=("weighted",), help="measure a whole recipe part by part instead")
    parser.add_argument("--videos", default="01,02,03", help="Ped2 training videos for --recipe")
    parser.add_argument("-p", "--param", action="append", default=[], help="--recipe: FEATURE.PARAM=VALUE")
    parser.add_argument("--before", type=Path, help="--recipe: a checkout of today's main, its extract run alongside")
    args = parser.parse_args()
    if args.recipe == "weighted":
        sys.path.insert(0, str(HERE))
        import weighted_parts

        return weighted_parts.main(args.videos.split(","), args.repeats, args.json, args.param, args.before)

    from vadctl.backbones.torch_compat import extra_installed
    from vadctl.backbones.weights import WeightResolver
    from vadctl.common.specs import ClipSpec
    from vadctl.features.deep import attach_weights

    names = [n.strip() for n in args.features.split(",") if n.strip()]
    if "pose" in names and not extra_installed("mediapipe"):
        print("pose: skipped (mediapipe not installed here; run this script in the pose environment)")
        names.remove("pose")
    if {"clip", "clip_regions", "x3d"} & set(names) and not extra_installed("open_clip", "pytorchvideo"):
        raise SystemExit("install the clip and x3d extras first: pip install -e '.[clip,x3d]' -c constraints.txt")
    if "yolox" in names and not YOLOX_FILE.is_file():
        print(f"yolox: skipped ({YOLOX_FILE} is absent; vadctl never downloads weights)")
        names.remove("yolox")
    work = Path(tempfile.mkdtemp(prefix="vadctl-featurize-"))
    results = []
    try:
        video = trimmed_copy(args.video, args.frames, work)
        random_weights(work / "weights", names, args.clip_model)
        os.environ["VADCTL_WEIGHTS_DIR"] = str(work / "weights")
        clips = ClipSpec()
        windows = all_windows(video)
        info = None
        from vadctl.video.catalog import discover
        from vadctl.video.reader import VideoReader

        info = VideoReader(discover([video])[0]).info
        for name in names:
            featurizers, main_name = featurizers_for(name, args.clip_model)
            attach_weights(featurizers, WeightResolver(explicit={}))
            featurizer = next(f for f in featurizers if f.name == main_name)
            for f in featurizers:
                f.begin(info, clips)  # loads the model: not timed
            bare(name, featurizer, featurizers, windows, info, clips)  # warm-up: first calls set up kernels
            best_bare, best_extract, ratios = 0.0, 0.0, []
            eager, runtime_ratios = None, []  # appearance: eager torch beside onnxruntime, same batches
            if name in ("appearance", "appearance_regions"):
                eager = torch_encoder(featurizer)
                batches = appearance_batches(name, featurizer, featurizers, windows)
                timed(batches[:1], eager.forward)  # warm-up
            for repeat in range(args.repeats):
                store = work / f"store-{name}-{repeat}.zarr"
                if repeat % 2:  # alternate the order, so drift in the machine's load cancels out
                    units_e, seconds_e = extract(name, params_for(name, args.clip_model), video, store)
                    units_b, seconds_b = bare(name, featurizer, featurizers, windows, info, clips)
                else:
                    units_b, seconds_b = bare(name, featurizer, featurizers, windows, info, clips)
                    units_e, seconds_e = extract(name, params_for(name, args.clip_model), video, store)
                shutil.rmtree(store, ignore_errors=True)
                if units_b != units_e:
                    raise SystemExit(f"{name}: bare saw {units_b} {UNITS[name]}, extract {units_e}")
                best_bare = max(best_bare, units_b / seconds_b)
                best_extract = max(best_extract, units_e / seconds_e)
                ratios.append((units_e / seconds_e) / (units_b / seconds_b))
                if eager is not None:
                    units_t, seconds_t = timed(batches, eager.forward)
                    runtime_ratios.append((units_b / seconds_b) / (units_t / seconds_t))
                    print(f"{name:13s} run {repeat + 1}: eager torch {units_t / seconds_t:8.2f} {UNITS[name]}/s")
                print(
                    f"{name:13s} run {repeat + 1}: bare {units_b / seconds_b:8.2f} {UNITS[name]}/s, "
                    f"extract {units_e / seconds_e:8.2f} {UNITS[name]}/s ({units_e} {UNITS[name]})",
                    flush=True,
                )
            row = {
                "feature": name,
                "model": {
                    "clip": args.clip_model,
                    "clip_regions": args.clip_model,
                    "x3d": "x3d_s",
                    "pose": "mediapipe 0.10.21 (complexity 1)",
                    "raft": "raft_small, 12 iterations",
                    "yolox": "YOLOX-nano ONNX (416×416, batch 1), onnxruntime",
                    "appearance": "MobileNetV2, onnxruntime, short side 224",
                    "appearance_regions": "MobileNetV2, onnxruntime, crops 224×224",
                }[name],
                "units": UNITS[name],
                "count": units_e,
                "bare_per_s": round(best_bare, 3),
                "extract_per_s": round(best_extract, 3),
                "ratio_median": round(float(np.median(ratios)), 3),
                "ratio_best": round(best_extract / best_bare, 3),
                "ratios": [round(r, 3) for r in ratios],
            }
            if runtime_ratios:
                row["onnxruntime_over_torch_median"] = round(float(np.median(runtime_ratios)), 3)
                row["onnxruntime_over_torch"] = [round(r, 3) for r in runtime_ratios]
                print(f"{name:13s} onnxruntime / eager torch (bare): median {row['onnxruntime_over_torch_median']:.2f}")
            results.append(row)
            print(
                f"{name:13s} best: bare {best_bare:.2f}, extract {best_extract:.2f} {UNITS[name]}/s; "
                f"ratio median {row['ratio_median']:.2f}, of bests {row['ratio_best']:.2f}",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine = {
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "load_average_after": os.getloadavg(),
        "frames": args.frames,
        "video": str(args.video.name),
    }
    print(json.dumps({"machine": machine, "results": results}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"machine": machine, "results": results}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
