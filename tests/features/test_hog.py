"""`hog_regions`: the weight-free appearance attribute, from its gradients to AI-VAD's deep role."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from videos import Square, render, write_video

from vadctl import api
from vadctl.common.specs import ArraySpec, FeatureSpec, Fingerprint
from vadctl.errors import UsageError
from vadctl.features.hog import BINS, HogRegions, hog, hog_dimension
from vadctl.models.aivad import AiVad
from vadctl.models.files import load_model
from vadctl.models.fit import fit_model
from vadctl.review.metrics import align, evaluate, read_labels
from vadctl.scoring.score import score_model
from vadctl.store import FeatureStore, VideoRecord

N_FRAMES, WIDTH = 36, 96


def orientation_totals(window: np.ndarray) -> np.ndarray:
    return hog(window[None], 4).reshape(-1, BINS).sum(axis=0)


def test_edges_land_in_their_orientation_bins():
    vertical = np.zeros((32, 16), np.uint8)
    vertical[:, 8:] = 255  # a vertical edge: gradient along x, 0°, shared by the 10° and 170° bins
    totals = orientation_totals(vertical)
    assert totals[0] == pytest.approx(totals[8]) and totals[0] > 0
    assert np.all(totals[1:8] == 0)
    horizontal = np.zeros((32, 16), np.uint8)
    horizontal[16:, :] = 255  # gradient along y, 90°: the bin centred on 90°
    totals = orientation_totals(horizontal)
    assert totals[4] > 0 and np.all(np.delete(totals, 4) == 0)


def test_rows_are_unit_length_and_a_flat_crop_is_zeros_not_nan():
    rng = np.random.default_rng(0)
    windows = rng.integers(0, 256, (5, 32, 16)).astype(np.uint8)
    windows[2] = 77  # no gradient at all
    values = hog(windows, 4)
    assert values.shape == (5, hog_dimension(16, 32, 4)) == (5, 756)
    assert np.all(np.isfinite(values))
    norms = np.linalg.norm(values, axis=1)
    assert norms[2] == 0
    assert np.allclose(np.delete(norms, 2), 1, atol=1e-5)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"width": 10}, "hog_regions.width=10"),
        ({"height": 4}, "hog_regions.height=4"),
        ({"cell": 1}, "hog_regions.cell=1"),
        ({"width": 16, "cell": 3}, "a multiple of cell=3"),
    ],
)
def test_bad_layouts_are_refused_in_one_line(params, message):
    with pytest.raises(UsageError, match=message) as caught:
        HogRegions(**params)
    assert "\n" not in str(caught.value)


def with_a_large_object(seed: int, rng) -> tuple[np.ndarray, list[int]]:
    """A video of walkers (as in training) plus an object 2.5× their size, with their texture,
    moving at their pace: it moves like them and looks unlike them. Also the frames showing it."""
    walkers = [Square(float(rng.uniform(-20, 60)), float(rng.uniform(30, 44)), 3.0, 0.0) for _ in range(2)]
    large = Square(-40.0 - 3 * 15, 2.0, 3.0, 0.0, size=40)  # in view from frame 15 on
    frames = render(N_FRAMES, width=WIDTH, squares=[*walkers, large], seed=seed)
    shown = [t for t in range(N_FRAMES) if large.x + large.dx * t + large.size > 0]
    return frames, shown


@pytest.fixture(scope="module")
def looks_wrong(tmp_path_factory) -> dict:
    """Training: textured squares at walking pace. Test: the same, plus a large object moving at the
    same pace: its velocity is normal, its look is not."""
    root = tmp_path_factory.mktemp("hog")
    rng = np.random.default_rng(3)
    for i in range(5):
        squares = [Square(float(rng.uniform(-20, 60)), float(rng.uniform(4, 40)), 3.0, 0.0) for _ in range(3)]
        write_video(root / "train" / f"t{i}.avi", render(N_FRAMES, width=WIDTH, squares=squares, seed=i))
    labels = ["video,frame,label"]
    for i in range(2):
        frames, shown = with_a_large_object(20 + i, rng)
        write_video(root / "test" / f"s{i}.avi", frames)
        labels += [f"s{i},{t},{int(t in shown)}" for t in range(N_FRAMES)]
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    store = root / "store.zarr"
    for split in ("train", "test"):
        report = api.extract([root / split], store, split)  # the default features
        assert report.count("failed") == 0
    return {"root": root, "store": store}


def test_rows_align_with_regions_and_are_stored_as_float16(looks_wrong):
    store = FeatureStore(looks_wrong["store"], read_only=True)
    specs = {spec.name: spec for spec, _ in store.specs("test").values()}
    assert specs["hog_regions"].params["upstream"]["regions"] == specs["regions"].hash
    for record in store.videos("test"):
        regions = store.entry(record, specs["regions"])
        shapes = store.entry(record, specs["hog_regions"])
        assert np.array_equal(shapes.offsets, regions.offsets)
        values = shapes["embedding"]
        assert values.dtype == np.float16 and values.shape == (int(regions.offsets[-1]), 756)
        assert np.allclose(np.linalg.norm(values.astype(np.float32), axis=1), 1, atol=2e-3)


def auroc(store_path: Path, params: dict, labels: Path, tmp_path: Path) -> tuple[float, dict]:
    """AI-VAD's figure with `params`, its motion attribute off: these tests weigh HOG against velocity."""
    store = FeatureStore(store_path, read_only=True)
    params = {"use_motion_features": False, **params}
    fitted = fit_model(store, "aivad", params, "train", out=tmp_path / "aivad.safetensors")
    frames, _ = score_model(load_model(tmp_path / "aivad.safetensors"), store, "test")
    joined, _ = align(frames, read_labels(labels))
    return evaluate(joined, "score").micro_auroc, fitted.model.features_


def test_aivad_reads_it_by_default_and_finds_what_velocity_cannot(looks_wrong, tmp_path):
    labels = looks_wrong["root"] / "labels.csv"
    both, features = auroc(looks_wrong["store"], {}, labels, tmp_path)
    assert features["deep"].name == "hog_regions"
    velocity_only, _ = auroc(looks_wrong["store"], {"use_deep_features": False}, labels, tmp_path)
    looks_only, _ = auroc(looks_wrong["store"], {"use_velocity_features": False}, labels, tmp_path)
    assert looks_only > 0.9
    assert both > 0.9 and both > velocity_only + 0.08


def test_learnt_embeddings_win_over_hog_when_both_were_extracted(tmp_path):
    """The weighted recipe's store also holds the default extract: AI-VAD must take the detector's
    regions with their ImageNet crops, not the foreground regions with HOG (and not call it a tie)."""
    store = FeatureStore(tmp_path / "store.zarr", create=True)
    record = VideoRecord("train", "v", "/x/v.mp4", Fingerprint(1, 1, "v"), n_frames=4, fps=10, height=32, width=32)
    store.add_video(record, np.array([[0, 4]]))
    picked = {}
    for regions_params, deep in (({"detector": None}, "hog_regions"), ({"detector": "yolox"}, "appearance_regions")):
        regions = FeatureSpec("regions", 1, regions_params)
        upstream = {"upstream": {"regions": regions.hash}}
        entries = [
            (regions, {"boxes": np.zeros((4, 4), np.float32)}),
            (FeatureSpec("velocity", 2, {"n_bins": 16, **upstream}), {"magnitude_sum": np.ones((4, 16), np.float32)}),
            (FeatureSpec(deep, 1, upstream), {"embedding": np.ones((4, 8), np.float16)}),
        ]
        for spec, arrays in entries:
            specs = {k: ArraySpec(v.shape[1:], str(v.dtype), ragged=True) for k, v in arrays.items()}
            writer = store.entry_writer(record, spec, specs, 4)
            writer.write(ragged=arrays, counts=np.ones(4, np.int64))
            store.commit_entry(record, writer, writer.finish())
        picked[deep] = regions.hash
    chosen = AiVad().select_features(store, "train")
    assert chosen["deep"].name == "appearance_regions"
    assert chosen["regions"].hash == picked["appearance_regions"]
