"""Choose weight-free AI-VAD parameters on pseudo-anomalies made from Ped2's training videos.

The pre-registered protocol is in benchmarks/ped2_choices.md ("Weight-free AI-VAD parameters chosen
on pseudo-anomalies"): each training video gets one synthetic event (a person pasted at twice the
fastest training speed, a person stretched into a wide object at walking pace, or skipped frames,
after Astrid et al., BMVC 2021), written losslessly; four folds fit AI-VAD on 12 original training
videos and score the pseudo-anomalous versions of the other 4. The proxy must first rank the four
variants already measured on the test split as the test split did; only then does it choose among
the 8 candidates. No test video and no test label is read.

Usage: python benchmarks/ped2_pseudo.py [--data ../shared/data/ped2] [--work DIR] [--sheet PNG] [--known-only]
       python benchmarks/ped2_pseudo.py --demo-check '{"n_neighbors_deep": 5}'
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from decord import VideoReader, cpu
from sklearn.metrics import roc_auc_score

from vadctl import api
from vadctl.errors import VadctlError
from vadctl.models.registry import build
from vadctl.store import FeatureStore

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "ped2"
KINDS = ("fast", "wide", "skip")
FAST_SPEED = 4.0  # px/frame: about twice the fastest flow in Ped2's training videos (2.2)
WIDE_SPEED = 1.0  # px/frame: walking pace
WIDE_SCALE = (2.5, 0.8)  # width, height factors: a wide object such as a cart
SKIP_STRIDE = 3
PERSON = {"height": (24, 60), "width": (8, 30), "aspect": (1.6, 4.0)}
FOLDS = 4
WHOLE_OBJECT_FOREGROUND = {"regions": {"binary_threshold": 12, "dilation": 1}}
DEFAULT = {"n_components_velocity": 2, "n_neighbors_deep": 1, "n_velocity_bins": 1}
GRID = {"n_components_velocity": (2, 5), "n_neighbors_deep": (1, 5), "n_velocity_bins": (1, 4)}
MARGIN = 0.005
# The test split's order of the four weight-free variants measured there (ped2_choices.md).
TEST_ORDER = ("aivad default", "aivad no hog", "fuvas default", "aivad fg 12/1")


@dataclass
class Sprite:
    pixels: np.ndarray  # gray uint8 (h, w)
    alpha: np.ndarray  # float32 (h, w) in [0, 1]
    x: int
    y: int


def read_gray(path: Path) -> np.ndarray:
    """All frames of a Ped2 video as (n, h, w) uint8 (its frames are gray: R = G = B)."""
    return VideoReader(str(path), ctx=cpu(0))[:].asnumpy()[..., 0].copy()


def write_lossless(path: Path, frames: np.ndarray) -> None:
    """FFV1 in AVI: decord reads back exactly these pixels, so normal frames stay the originals."""
    height, width = frames.shape[1:]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (width, height), True)
    if not writer.isOpened():
        raise SystemExit(f"{path}: OpenCV cannot write FFV1 here")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    writer.release()


def find_people(frames: np.ndarray, step: int = 5) -> list[Sprite]:
    """Person-shaped components of the difference from the video's temporal median, with their pixels."""
    background = cv2.GaussianBlur(np.median(frames, axis=0).astype(np.uint8), (5, 5), 0)
    kernel = np.ones((5, 5), np.uint8)
    height, width = frames.shape[1:]
    found = []
    for frame in frames[step::step]:
        moving = cv2.absdiff(cv2.GaussianBlur(frame, (5, 5), 0), background) > 25
        mask = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for label in range(1, n):
            x, y, w, h, area = stats[label]
            if not (PERSON["height"][0] <= h <= PERSON["height"][1] and PERSON["width"][0] <= w <= PERSON["width"][1]):
                continue
            if not PERSON["aspect"][0] <= h / w <= PERSON["aspect"][1] or area < 0.4 * w * h:
                continue
            if x == 0 or y == 0 or x + w >= width or y + h >= height:
                continue
            alpha = (labels[y : y + h, x : x + w] == label).astype(np.float32)
            alpha = cv2.GaussianBlur(cv2.dilate(alpha, np.ones((3, 3), np.uint8)), (3, 3), 0)
            found.append(Sprite(frame[y : y + h, x : x + w].copy(), np.clip(alpha, 0, 1), int(x), int(y)))
    return found


def paste(frame: np.ndarray, sprite: Sprite, x: float) -> None:
    """Blend the sprite into the frame with its top-left corner at (x, sprite.y), in place."""
    h, w = sprite.pixels.shape
    left = int(np.rint(x))
    region = frame[sprite.y : sprite.y + h, left : left + w].astype(np.float32)
    blended = region * (1 - sprite.alpha) + sprite.pixels.astype(np.float32) * sprite.alpha
    frame[sprite.y : sprite.y + h, left : left + w] = np.clip(np.round(blended), 0, 255).astype(np.uint8)


def slide(frames: np.ndarray, sprite: Sprite, speed: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The sprite slides horizontally from n/4 on, for n/2 frames or until it reaches the border."""
    n, _, width = frames.shape
    out, labels = frames.copy(), np.zeros(n, np.int8)
    start = n // 4
    room = width - sprite.pixels.shape[1]
    length = min(n // 2, int(room / speed) + 1)
    direction = 1 if rng.random() < 0.5 else -1
    travel = speed * (length - 1)
    low, high = (0.0, room - travel) if direction == 1 else (travel, float(room))
    x0 = rng.uniform(low, max(low, high))
    for step in range(length):
        paste(out[start + step], sprite, x0 + direction * speed * step)
        labels[start + step] = 1
    return out, labels


def widen(sprite: Sprite) -> Sprite:
    """A person stretched into a wide, low object, standing on the same ground line."""
    h, w = sprite.pixels.shape
    size = (int(np.rint(w * WIDE_SCALE[0])), int(np.rint(h * WIDE_SCALE[1])))
    pixels = cv2.resize(sprite.pixels, size, interpolation=cv2.INTER_LINEAR)
    alpha = cv2.resize(sprite.alpha, size, interpolation=cv2.INTER_LINEAR)
    return Sprite(pixels, alpha, sprite.x, sprite.y + h - size[1])


def skip(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From n/4 on, every SKIP_STRIDE-th frame: everything moves that many times faster."""
    n = len(frames)
    start = n // 4
    fast = frames[start::SKIP_STRIDE]
    labels = np.r_[np.zeros(start, np.int8), np.ones(len(fast), np.int8)]
    return np.concatenate([frames[:start], fast]), labels


def make_pseudo(data: Path, out: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """One event per training video (kind i mod 3), written to out/NN.avi; returns frame labels."""
    out.mkdir(parents=True, exist_ok=True)
    videos = sorted((data / "train").glob("*.mp4"))
    if len(videos) < 2:
        raise SystemExit(f"{data / 'train'}: needs Ped2's training videos (found {len(videos)})")
    labels = {}
    for index, video in enumerate(videos):
        rng = np.random.default_rng(seed + index)
        frames = read_gray(video)
        kind = KINDS[index % len(KINDS)]
        if kind == "skip":
            made, labels[video.stem] = skip(frames)
        else:
            source = videos[(index + len(videos) // 2) % len(videos)]  # another video's person
            people = find_people(read_gray(source))
            if not people:
                raise SystemExit(f"{source}: no person-shaped component found to paste")
            sprite = people[int(rng.integers(len(people)))]
            if kind == "wide":
                made, labels[video.stem] = slide(frames, widen(sprite), WIDE_SPEED, rng)
            else:
                made, labels[video.stem] = slide(frames, sprite, FAST_SPEED, rng)
        write_lossless(out / f"{video.stem}.avi", made)
    (out / "labels.json").write_text(json.dumps({k: v.tolist() for k, v in labels.items()}))
    (out / "kinds.json").write_text(json.dumps({v.stem: KINDS[i % 3] for i, v in enumerate(videos)}))
    return labels


def contact_sheet(folder: Path, labels: dict[str, np.ndarray], path: Path) -> None:
    """The middle anomalous frame of each pseudo video, four to a row, to check the events by eye."""
    tiles = []
    for video_id, frame_labels in sorted(labels.items()):
        frames = read_gray(folder / f"{video_id}.avi")
        middle = np.flatnonzero(frame_labels)[len(np.flatnonzero(frame_labels)) // 2]
        tile = cv2.cvtColor(frames[middle], cv2.COLOR_GRAY2BGR)
        cv2.putText(tile, f"{video_id} f{middle}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255), 1)
        tiles.append(tile)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + 4]) for i in range(0, len(tiles), 4)]
    cv2.imwrite(str(path), np.vstack(rows))


def extract(data: Path, pseudo: Path, store: Path, params: dict | None) -> float:
    started = time.perf_counter()
    for split, root in (("train", data / "train"), ("pseudo", pseudo)):
        report = api.extract(root, store, split, params=params)
        if report.failed:
            raise SystemExit(f"extract {split}: {len(report.failed)} video(s) failed")
    return time.perf_counter() - started


def fold_auroc(
    model_name: str, params: dict, store: FeatureStore, labels: dict[str, np.ndarray], per_video: dict | None = None
) -> list[float]:
    """Each fold: fit on the other 12 original videos, score the 4 held-out pseudo videos, micro AUROC
    (and, into `per_video`, each video's own AUROC: its event's frames against its normal ones)."""
    ids = sorted(labels)
    size = len(ids) // FOLDS
    result = []
    for fold in range(FOLDS):
        held = ids[fold * size : (fold + 1) * size]
        model = build(model_name, params)
        model.select_features(store, "train")
        model.fit(store, "train", [v for v in ids if v not in held])
        scores = {s.video_id: np.asarray(s.frame_scores) for s in model.score(store, "pseudo", held)}
        if per_video is not None:
            per_video.update({v: float(roc_auc_score(labels[v], scores[v])) for v in held})
        y = np.concatenate([labels[v] for v in held])
        result.append(float(roc_auc_score(y, np.concatenate([scores[v] for v in held]))))
    return result


def demo_check(params: dict) -> tuple[float, float]:
    """The demo's requirement for AI-VAD with these parameters (the demo's own 4 velocity bins kept)."""
    import polars as pl

    from vadctl import demo

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = demo.generate(root / "demo", n_frames=120, seed=7, n_weak=demo.N_WEAK)
        store = api.open_store(root / "demo.zarr", create=True, read_only=False)
        for split, folder in (("train", data.train), ("test", data.test)):
            api.extract(folder, store, split, demo.DEMO_FEATURES, scene="walkway")
        chosen = {**params, **demo.DEMO_MODELS["aivad"]}
        model = api.fit("aivad", store, root / "aivad.safetensors", chosen)
        scores = pl.read_parquet(api.score(model, store, "test", root / "scores.parquet"))
        labels = pl.read_csv(data.labels, schema_overrides={"video": pl.String})
        joined = scores.join(labels, on=["video", "frame"])
        rates = joined.group_by("label").agg(pl.col("is_anomaly").mean()).sort("label")["is_anomaly"].to_list()
    return float(rates[1]), float(rates[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--work", type=Path, default=None, help="folder for the pseudo videos and stores")
    parser.add_argument("--sheet", type=Path, default=None, help="write a contact sheet of the events and stop")
    parser.add_argument("--known-only", action="store_true", help="stop after the validity check")
    parser.add_argument("--demo-check", default=None, help="JSON AI-VAD parameters: run the demo's check only")
    args = parser.parse_args()
    if args.demo_check is not None:
        try:
            params = json.loads(args.demo_check)
        except json.JSONDecodeError as error:
            sys.exit(f"--demo-check {args.demo_check!r}: not a JSON object of AI-VAD parameters ({error})")
        if not isinstance(params, dict):
            sys.exit(f"--demo-check {args.demo_check!r}: not a JSON object of AI-VAD parameters")
        try:
            recall, fpr = demo_check(params)
        except VadctlError as error:
            sys.exit(f"--demo-check: {error}")
        verdict = "passes" if recall >= 0.5 and fpr <= 0.05 else "FAILS"
        print(f"demo, AI-VAD {args.demo_check}: recall {recall:.3f}, false-positive rate {fpr:.3f}: {verdict}")
        return
    if not (args.data / "train").is_dir():
        sys.exit(f"{args.data}: no train/ folder (Ped2 is read from ../shared/data/ped2)")
    work = args.work or Path(tempfile.mkdtemp(prefix="ped2_pseudo_"))
    started = time.perf_counter()
    labels = make_pseudo(args.data, work / "pseudo")
    n_anomalous = sum(int(v.sum()) for v in labels.values())
    n_frames = sum(len(v) for v in labels.values())
    took = time.perf_counter() - started
    print(f"pseudo videos: {len(labels)}, {n_frames} frames, {n_anomalous} anomalous ({took:.1f} s)")
    if args.sheet is not None:
        contact_sheet(work / "pseudo", labels, args.sheet)
        print(f"contact sheet: {args.sheet}")
        return
    stores = {"default": work / "default.zarr", "fg 12/1": work / "fg12.zarr"}
    for name, params in (("default", None), ("fg 12/1", WHOLE_OBJECT_FOREGROUND)):
        print(f"extract {name}: {extract(args.data, work / 'pseudo', stores[name], params):.1f} s")
    default_store = FeatureStore(stores["default"])
    known = {
        "aivad default": ("aivad", {}, default_store),
        "aivad no hog": ("aivad", {"use_deep_features": False}, default_store),
        "fuvas default": ("fuvas", {}, default_store),
        "aivad fg 12/1": ("aivad", {}, FeatureStore(stores["fg 12/1"])),
    }
    print("validity: the four variants the test split has ranked (test micro AUROC beside)")
    test_micro = dict(zip(TEST_ORDER, (0.9268, 0.9173, 0.8975, 0.8655), strict=True))
    proxy = {}
    kinds = json.loads((work / "pseudo" / "kinds.json").read_text())
    for name, (model, params, store) in known.items():
        per_video: dict[str, float] = {}
        folds = fold_auroc(model, params, store, labels, per_video)
        proxy[name] = float(np.mean(folds))
        shown = " ".join(f"{f:.3f}" for f in folds)
        by_kind = " ".join(f"{k} {np.mean([a for v, a in per_video.items() if kinds[v] == k]):.3f}" for k in KINDS)
        print(f"  {name:<16} proxy {proxy[name]:.4f}  folds {shown}  test {test_micro[name]:.4f}  per video: {by_kind}")
    ranked = tuple(sorted(proxy, key=proxy.get, reverse=True))
    valid = ranked == TEST_ORDER
    print(f"  proxy order: {' > '.join(ranked)}: {'same as' if valid else 'NOT the same as'} the test split's")
    if args.known_only:
        return
    print("candidates (AI-VAD on the default store)")
    results = {}
    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values, strict=True))
        folds = fold_auroc("aivad", params, default_store, labels)
        results[values] = float(np.mean(folds))
        mark = " (default)" if params == DEFAULT else ""
        print(f"  {json.dumps(params)}  proxy {results[values]:.4f}  folds {' '.join(f'{f:.3f}' for f in folds)}{mark}")
    best = max(results, key=results.get)
    default_score = results[tuple(DEFAULT.values())]
    print(f"best: {dict(zip(GRID, best, strict=True))} {results[best]:.4f}; default {default_score:.4f}")
    if not valid:
        print("decision: the proxy does not rank the known variants as the test split did; nothing is chosen")
    elif results[best] - default_score < MARGIN:
        print(f"decision: no candidate beats the default by {MARGIN}; the default stays")
    else:
        ahead = sorted((k for k in results if results[k] - default_score >= MARGIN), key=results.get, reverse=True)
        print("decision: in order, the first that passes the demo check (--demo-check) becomes the default:")
        for values in ahead:
            print(f"  {json.dumps(dict(zip(GRID, values, strict=True)))}  {results[values]:.4f}")
    print(f"total {time.perf_counter() - started:.1f} s; work folder {work}")


if __name__ == "__main__":
    main()
