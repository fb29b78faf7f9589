"""AI-VAD's pose and deep attributes, on entries written through the real store with the contract
the deep featurizers follow (`clip_regions`: `embedding`; `pose`: `keypoints`, `found`; rows
aligned with `regions`)."""

from pathlib import Path

import numpy as np
import pytest

from vadctl.common.specs import ArraySpec, FeatureSpec, Fingerprint
from vadctl.models.files import load_model
from vadctl.models.fit import fit_model
from vadctl.review.metrics import align, evaluate
from vadctl.scoring.score import score_model
from vadctl.store import FeatureStore, VideoRecord

N_FRAMES, PER_FRAME = 30, 2
REGIONS = FeatureSpec("regions", 1, {"toy": True})
UPSTREAM = {"upstream": {"regions": REGIONS.hash}}
VELOCITY = FeatureSpec("velocity", 2, {"n_bins": 16, **UPSTREAM})
DEEP = FeatureSpec("clip_regions", 1, {"model": "toy", **UPSTREAM})
POSE = FeatureSpec("pose", 1, {"toy": True, **UPSTREAM})


def write(store, record, spec, arrays: dict[str, np.ndarray]) -> None:
    specs = {name: ArraySpec(value.shape[1:], str(value.dtype), ragged=True) for name, value in arrays.items()}
    writer = store.entry_writer(record, spec, specs, N_FRAMES)
    writer.write(ragged=arrays, counts=np.full(N_FRAMES, PER_FRAME))
    store.commit_entry(record, writer, writer.finish())


def video(store, split: str, name: str, rng, odd_frames: range = range(0)) -> list[int]:
    """Regions at walking speed; in `odd_frames` region 0 looks (and stands) unlike anything in training."""
    record = VideoRecord(
        split, name, f"/x/{name}.mp4", Fingerprint(1, 1, name), n_frames=N_FRAMES, fps=10, height=64, width=96
    )
    store.add_video(record, np.array([[0, N_FRAMES]]))
    rows = N_FRAMES * PER_FRAME
    boxes = np.tile(np.array([[10, 10, 30, 40]], np.float32), (rows, 1))
    write(store, record, REGIONS, {"boxes": boxes, "scores": np.ones(rows, np.float32)})
    counts = np.full((rows, 16), 50.0, np.float32)
    write(
        store,
        record,
        VELOCITY,
        {"magnitude_sum": counts * rng.normal(2.0, 0.1, (rows, 1)).astype(np.float32), "count": counts},
    )
    embedding = rng.normal(0, 0.05, (rows, 8)).astype(np.float32)
    embedding[:, 0] += 1.0
    keypoints = np.clip(rng.normal(0.5, 0.05, (rows, 17, 2)), 0, 1).astype(np.float32)
    found = np.ones(rows, np.uint8)
    found[1::7] = 0  # some crops hold no person: no pose for them
    for t in odd_frames:
        embedding[t * PER_FRAME, 0], embedding[t * PER_FRAME, 1] = 0.0, 1.0
        keypoints[t * PER_FRAME] = 0.2  # a crouched, folded shape
    write(store, record, DEEP, {"embedding": embedding.astype(np.float16)})
    write(store, record, POSE, {"keypoints": keypoints, "visibility": np.ones((rows, 17), np.float32), "found": found})
    return [int(t in odd_frames) for t in range(N_FRAMES)]


@pytest.fixture(scope="module")
def attribute_store(tmp_path_factory) -> tuple[Path, "object"]:
    import polars as pl

    path = tmp_path_factory.mktemp("attr") / "store.zarr"
    store = FeatureStore(path, create=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        video(store, "train", f"t{i}", rng)
    rows = []
    for i in range(2):
        labels = video(store, "test", f"x{i}", rng, odd_frames=range(12, 18))
        rows += [(f"x{i}", t, label) for t, label in enumerate(labels)]
    labels = pl.DataFrame(rows, schema=["video", "frame", "label"], orient="row")
    return path, labels


@pytest.mark.parametrize(
    "params, found",
    [
        ({}, True),  # velocity + pose + deep
        ({"use_pose_features": False}, True),  # deep alone sees the odd appearance
        ({"use_deep_features": False}, True),  # pose alone sees the odd shape
        ({"use_pose_features": False, "use_deep_features": False}, False),  # velocity cannot
    ],
)
def test_pose_and_deep_attributes_find_what_velocity_cannot(attribute_store, tmp_path, params, found):
    path, labels = attribute_store
    store = FeatureStore(path, read_only=True)
    result = fit_model(store, "aivad", {"smoothing_sigma": 0.0, **params}, "train", out=tmp_path / "m.safetensors")
    expected = {"velocity", "regions"} | ({"deep"} if params.get("use_deep_features", True) else set())
    expected |= {"pose"} if params.get("use_pose_features", True) else set()
    assert set(result.model.features_) == expected
    frames, _ = score_model(load_model(tmp_path / "m.safetensors"), store, "test")
    joined, _ = align(frames, labels)
    auroc = evaluate(joined).micro_auroc
    assert (auroc >= 0.95) if found else (auroc <= 0.75), auroc


def test_knn_distance_is_the_mean_distance_to_the_k_nearest_bank_rows():
    from vadctl.models.density import KNNDistance

    # a hand-made bank on a line: distances from the origin are 1, 2, 3, 4, 5, 10
    bank = np.array([[1, 0], [0, 2], [-3, 0], [0, -4], [5, 0], [10, 0]], np.float32)
    query = np.array([[0, 0], [10, 0]], np.float32)
    np.testing.assert_allclose(KNNDistance(1).fit(bank).score(query), [1.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(KNNDistance(2).fit(bank).score(query), [1.5, 2.5], rtol=1e-6)
    np.testing.assert_allclose(
        KNNDistance(5).fit(bank).score(query), [3.0, (0 + 5 + 9 + 104**0.5 + 116**0.5) / 5], rtol=1e-6
    )
    with pytest.raises(ValueError, match="k=7 needs at least 7"):
        KNNDistance(7).fit(bank)


def test_knn_k_is_honoured_for_deep_features(attribute_store):
    path, _ = attribute_store
    store = FeatureStore(path, read_only=True)
    bank = np.concatenate(
        [store.entry(record, DEEP).read("embedding").astype(np.float32) for record in store.videos("train")]
    )
    assert len(bank) == 5 * N_FRAMES * PER_FRAME
    queries = np.random.default_rng(3).normal(0, 0.5, (4, 8)).astype(np.float32)
    distances = np.sort(np.linalg.norm(queries[:, None, :] - bank[None, :, :], axis=2), axis=1)
    for k in (1, 5):
        model = fit_model(store, "aivad", {"n_neighbors_deep": k}, "train").model
        expected = distances[:, :k].mean(axis=1)  # brute force over the training embeddings, here
        np.testing.assert_allclose(model.estimators_["deep"].score(queries), expected, rtol=1e-4)
    assert not np.allclose(distances[:, 0], distances[:, :5].mean(axis=1), rtol=1e-3)  # k=1 and k=5 differ here


def test_smoothing_stays_within_each_video(attribute_store):
    """Scores of a video are the same whether it is scored alone or after another video: smoothing
    never carries a score across the end of a video."""
    from vadctl.models.scores import temporal_smooth

    path, _ = attribute_store
    store = FeatureStore(path, read_only=True)
    smooth = fit_model(store, "aivad", {"smoothing_sigma": 2.0}, "train").model
    raw = fit_model(store, "aivad", {"smoothing_sigma": 0.0}, "train").model
    together = {s.video_id: s.frame_scores for s in smooth.score(store, "test", ["x0", "x1"])}
    for name in ("x0", "x1"):
        (alone,) = smooth.score(store, "test", [name])
        (unsmoothed,) = raw.score(store, "test", [name])
        np.testing.assert_allclose(together[name], alone.frame_scores)
        np.testing.assert_allclose(alone.frame_scores, temporal_smooth(unsmoothed.frame_scores, 2.0))
    assert not np.allclose(together["x1"], unsmoothed.frame_scores)  # smoothing did something
