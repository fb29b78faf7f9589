"""Small synthetic stores and tiny fitted neural models, built once per test session.

FFP: squares at walking speed in the bottom band of a textured street (train); test videos add a
square four times faster in the top band nobody uses (labelled where it is visible).

Scene-aware: one street seen as four scenes, told apart only by a static sign (none, top-left,
top-middle, top-right). In scenes A, C and D a large bright vehicle passes now and then; scene B
(sign top-right) has walkers only. The test videos are scene B with a vehicle passing: normal in
three scenes, anomalous in B.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from videos import Square, make_video, render, write_video

from vadctl import api
from vadctl.models.fit import fit_model
from vadctl.store import FeatureStore

N_FRAMES, WIDTH, HEIGHT = 40, 96, 64
FRAMES_32 = {"frames": {"height": 32, "width": 32}}
FFP_PARAMS = {
    "resolution": 32,
    "base_channels": 8,
    "disc_channels": 8,
    "lr_g": 1e-3,  # tiny test configuration: 10× the published rates so 60 steps learn something
    "lr_d": 1e-4,
    "steps": 60,
    "device": "cpu",
}
_cache: dict[str, dict] = {}


def extract(store: Path, root: Path, split: str, params: dict, scene: str | None = None) -> None:
    api.extract([root], store, split, ["frames"], params, scene=scene)


def visible(square: Square, n_frames: int = N_FRAMES) -> list[int]:
    return [t for t in range(n_frames) if -square.size < square.x + square.dx * t < WIDTH]


def _walkers(rng: np.random.Generator, n: int) -> list[Square]:
    return [
        Square(float(rng.uniform(-10, 70)), float(rng.uniform(38, 46)), float(rng.uniform(2.0, 3.0)), 0.0)
        for _ in range(n)
    ]


def ffp_store(factory) -> dict:
    if "ffp_store" in _cache:
        return _cache["ffp_store"]
    root = factory.mktemp("ffp")
    rng = np.random.default_rng(0)
    for i in range(5):
        make_video(root / "train" / f"t{i}.avi", N_FRAMES, seed=i, squares=_walkers(rng, 2))
    labels, fast = ["video,frame,label"], {}
    for i in range(2):
        odd = Square(-16.0 - 12 * 4 * i, 4.0, 12.0, 0.0)
        fast[f"f{i}"] = odd
        make_video(root / "fast" / f"f{i}.avi", N_FRAMES, seed=10 + i, squares=[*_walkers(rng, 2), odd])
        shown = set(visible(odd))
        labels += [f"f{i},{t},{int(t in shown)}" for t in range(N_FRAMES)]
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    store = root / "store.zarr"
    for split in ("train", "fast"):
        extract(store, root / split, split, FRAMES_32)
    _cache["ffp_store"] = {"root": root, "store": store, "labels": root / "labels.csv", "fast": fast}
    return _cache["ffp_store"]


def fitted_ffp(factory) -> dict:
    """FFP fitted once on the FFP store, saved to a model file."""
    if "ffp" not in _cache:
        info = ffp_store(factory)
        path = info["root"] / "models" / "ffp.safetensors"
        result = fit_model(FeatureStore(info["store"], read_only=True), "ffp", FFP_PARAMS, "train", out=path)
        _cache["ffp"] = {**info, "path": path, "result": result}
    return _cache["ffp"]


# ----- scenes ------------------------------------------------------------------------------------
SCENE_FRAMES = 48
SCENE_PARAMS = {
    "thumb": 8,
    "d_model": 64,
    "latent_dim": 4,
    "heads": 4,
    "layers": 1,
    "dropout": 0.0,
    "steps": 300,  # with 3× the default rate: was 1200 at 1e-3, four times the time for no better a fit
    "batch_size": 32,
    "lr": 3e-3,
    "device": "cpu",
}


def _scene_walkers(rng: np.random.Generator, n: int) -> list[Square]:
    return [
        Square(
            float(rng.uniform(-10, 80)),
            float(rng.uniform(40, 46)),
            float(rng.choice([-1, 1]) * rng.uniform(1.5, 2.5)),
            0.0,
            size=10,
            value=150,
        )
        for _ in range(n)
    ]


def _vehicle(start: float) -> Square:
    return Square(start, 16.0, 6.0, 0.0, size=20, value=235)


SIGNS = {"A": None, "C": (slice(0, 12), slice(0, 32)), "D": (slice(0, 12), slice(32, 64))}
SIGNS["B"] = (slice(0, 12), slice(64, 96))


def _scene_video(path: Path, scene: str, squares: list[Square]) -> None:
    frames = render(SCENE_FRAMES, squares=squares, seed=7)
    if SIGNS[scene] is not None:  # the same street everywhere; a static sign says which scene it is
        rows, cols = SIGNS[scene]
        frames[:, rows, cols] = 225
    write_video(path, frames)


def scene_store(factory) -> dict:
    if "scene_store" in _cache:
        return _cache["scene_store"]
    root = factory.mktemp("scenes")
    rng = np.random.default_rng(0)
    for i in range(4):
        for scene in ("A", "C", "D"):  # vehicles are normal here
            walkers = _scene_walkers(rng, 2)
            start = -22.0 - 6 * int(rng.integers(0, 20))
            _scene_video(root / scene / f"{scene.lower()}{i}.avi", scene, [*walkers, _vehicle(start)])
        _scene_video(root / "B" / f"b{i}.avi", "B", _scene_walkers(rng, 2))
    labels = ["video,frame,label"]
    for i in range(2):
        walkers = _scene_walkers(rng, 2)
        vehicle = _vehicle(-22.0 - 6 * (8 + 6 * i))
        _scene_video(root / "testB" / f"tb{i}.avi", "B", [*walkers, vehicle])
        shown = set(visible(vehicle, SCENE_FRAMES))
        labels += [f"tb{i},{t},{int(t in shown)}" for t in range(SCENE_FRAMES)]
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    store = root / "store.zarr"
    params = {"frames": {"height": 32, "width": 48}}
    for scene in ("A", "B", "C", "D"):
        extract(store, root / scene, "train", params, scene=scene)
    extract(store, root / "testB", "test", params, scene="B")
    _cache["scene_store"] = {"root": root, "store": store, "labels": root / "labels.csv"}
    return _cache["scene_store"]


def fitted_scene(factory, mode: str) -> dict:
    key = f"scene-{mode}"
    if key not in _cache:
        info = scene_store(factory)
        path = info["root"] / "models" / f"{mode}.safetensors"
        store = FeatureStore(info["store"], read_only=True)
        result = fit_model(store, "sceneaware", {**SCENE_PARAMS, "mode": mode}, "train", out=path)
        _cache[key] = {**info, "path": path, "result": result}
    return _cache[key]
