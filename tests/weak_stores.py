"""A small store for weak supervision, built once per test session, and a tiny fitted `plovad`.

Split `weak`: squares at walking speed in the bottom band (normal, labelled 0), plus videos with
one odd square labelled 1 with a class: `fast` (four times a walker's speed) or `zone` (walking in
the top band nobody uses). Split `test`: held-out videos of each kind, labelled per frame (with a
`class` column) where the odd square is visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from videos import Square, make_video

from vadctl import api

N_FRAMES, WIDTH = 40, 96
FEATURES = ("flow", "regions", "velocity", "motion")
PLOVAD_PARAMS = {
    "d_model": 16,
    "class_dim": 16,
    "heads": 2,
    "steps": 100,
    "dropout": 0.0,
    "velocity_bins": 4,
    "appearance_feature": "none",  # the store may hold tiny-CLIP features too (open-vocabulary test)
    "device": "cpu",
}
# plovad was built and checked on the first motion grid (edges 0.5-8 px/frame, raw fractions); on
# these tiny synthetic videos the log-spaced Hellinger default reads worse (micro AUROC 0.844, one
# class wrong), so its tests keep the grid they were calibrated on
MOTION_V1 = {"motion.edges": [0.5, 1, 2, 4, 8], "motion.hellinger": False}
_cache: dict[str, dict] = {}


def walkers(rng: np.random.Generator, n: int) -> list[Square]:
    return [
        Square(float(rng.uniform(-10, 60)), float(rng.uniform(30, 44)), float(rng.uniform(2.0, 3.0)), 0.0)
        for _ in range(n)
    ]


def odd(kind: str, rng: np.random.Generator) -> Square:
    if kind == "fast":
        return Square(-16.0 - 10 * float(rng.integers(0, 6)), float(rng.uniform(30, 40)), 10.0, 0.0)
    return Square(-16.0 - 2 * float(rng.integers(0, 8)), 2.0, 2.5, 0.0)


def visible(square: Square) -> set[int]:
    return {t for t in range(N_FRAMES) if -square.size < square.x + square.dx * t < WIDTH}


def weak_store(factory) -> dict:
    """The store with weight-free features, built once."""
    key = "weak"
    if key in _cache:
        return _cache[key]
    root = factory.mktemp("weak")
    rng = np.random.default_rng(3)
    videos, rows, frame_rows = root / "videos", ["video,label,class"], ["video,frame,label,class"]
    for i in range(6):
        make_video(videos / "weak" / f"n{i}.avi", N_FRAMES, seed=i, squares=walkers(rng, 2))
        rows.append(f"n{i},0,")
    for kind in ("fast", "zone"):
        for i in range(4):
            name = f"{kind[0]}{i}"
            squares = [*walkers(rng, 2), odd(kind, rng)]
            make_video(videos / "weak" / f"{name}.avi", N_FRAMES, seed=10 + i, squares=squares)
            rows.append(f"{name},1,{kind}")
    for kind in ("normal", "fast", "zone"):
        for i in range(2):
            name = f"t{kind[0]}{i}"
            squares = walkers(rng, 2)
            shown: set[int] = set()
            if kind != "normal":
                square = odd(kind, rng)
                squares.append(square)
                shown = visible(square)
            make_video(videos / "test" / f"{name}.avi", N_FRAMES, seed=20 + i, squares=squares)
            frame_rows += [f"{name},{t},{int(t in shown)},{kind if t in shown else ''}" for t in range(N_FRAMES)]
    (root / "video_labels.csv").write_text("\n".join(rows) + "\n")
    (root / "labels.csv").write_text("\n".join(frame_rows) + "\n")
    store = root / "store.zarr"
    for split in ("weak", "test"):
        api.extract([videos / split], store, split, FEATURES, MOTION_V1, clip_len=8, clip_stride=4)
    _cache[key] = {
        "root": root,
        "store": store,
        "videos": videos,
        "video_labels": root / "video_labels.csv",
        "labels": root / "labels.csv",
    }
    return _cache[key]


CLIP_TEST_VIDEOS = ("tf0", "tz0")


def with_clip(factory, weights: Path) -> dict:
    """The same store with tiny-CLIP frame embeddings added to the training videos and to two test
    videos (`CLIP_TEST_VIDEOS`); the other entries stay cached."""
    info = weak_store(factory)
    params = {"clip": {"model": "vadctl-tiny-test", "pretrained": "custom"}}
    tests = [info["videos"] / "test" / f"{name}.avi" for name in CLIP_TEST_VIDEOS]
    for split, roots in (("weak", [info["videos"] / "weak"]), ("test", tests)):
        api.extract(roots, info["store"], split, ["clip"], params, {"clip": weights})
    return info


def fitted_plovad(factory) -> dict:
    """`plovad` fitted once on the weak store, saved to a model file."""
    if "plovad" not in _cache:
        info = weak_store(factory)
        path = info["root"] / "models" / "plovad.safetensors"
        api.fit("plovad", info["store"], path, PLOVAD_PARAMS, split="weak", video_labels=info["video_labels"])
        _cache["plovad"] = {**info, "path": path}
    return _cache["plovad"]
