"""AI-VAD and FUVAS on small synthetic stores where the anomaly is known."""

import numpy as np
import pytest

from vadctl.errors import FeatureError, UsageError
from vadctl.models import build
from vadctl.models.aivad import RegionData
from vadctl.models.density import GMMDensity, KNNDistance, crossfit_scores
from vadctl.models.fit import fit_model
from vadctl.review.metrics import align, evaluate, read_labels
from vadctl.store import FeatureStore


def auroc(model, info: dict, split: str) -> float:
    store = FeatureStore(info["store"], read_only=True)
    videos = [r.video_id for r in store.videos(split)]
    from vadctl.models.calibration import Calibration
    from vadctl.scoring.tables import frames_table

    scores = list(model.score(store, split, videos))
    table = frames_table(scores, Calibration.from_scores(scores, "test"), model.name)
    joined, _ = align(table, read_labels(info["labels"]), partial=True)
    return evaluate(joined).micro_auroc


@pytest.fixture(scope="module")
def fitted(model_store):
    store = FeatureStore(model_store["store"], read_only=True)
    return {name: fit_model(store, name, {}, "train").model for name in ("aivad", "fuvas")}


def test_aivad_finds_the_fast_object_and_not_noise(fitted, model_store):
    model = fitted["aivad"]
    assert set(model.features_) == {"velocity", "regions", "motion"}  # pose/deep absent; motion extracted
    assert auroc(model, model_store, "fast") >= 0.9
    assert 0.3 <= auroc(model, model_store, "same") <= 0.7


def test_fuvas_finds_motion_where_there_never_is_any(fitted, model_store):
    model = fitted["fuvas"]
    assert model.features_["clips"].name == "motion"
    assert auroc(model, model_store, "zone") >= 0.9
    assert 0.3 <= auroc(model, model_store, "same") <= 0.7


def test_fuvas_localizes_the_zone_anomaly_in_the_top_band(fitted, model_store):
    store = FeatureStore(model_store["store"], read_only=True)
    (scores,) = fitted["fuvas"].score(store, "zone", ["z0"])
    regions = scores.regions
    assert regions is not None and len(regions.frame) > 0
    top = regions.boxes[:, 1] < 20  # y1 in source pixels: the anomaly runs at y = 2..18
    assert top.mean() > 0.5


def test_aivad_regions_are_in_source_pixels_and_scored(fitted, model_store):
    store = FeatureStore(model_store["store"], read_only=True)
    (scores,) = fitted["aivad"].score(store, "fast", ["f0"])
    regions = scores.regions
    assert len(regions.frame) == len(regions.boxes) == len(regions.score) > 0
    assert regions.boxes[:, 2].max() <= 96 and regions.boxes[:, 3].max() <= 64
    assert len(scores.frame_scores) == 40


def test_heldout_scores_leave_each_video_out():
    rng = np.random.default_rng(0)
    features = np.repeat(rng.normal(size=(4, 3)), 5, axis=0)  # 4 videos, each repeating one point
    groups = np.repeat(np.arange(4), 5)
    in_sample = KNNDistance(1).fit(features).score(features)
    heldout = crossfit_scores(features, groups, lambda: KNNDistance(1))
    assert np.allclose(in_sample, 0) and (heldout > 0.1).all()
    gmm = crossfit_scores(features + rng.normal(0, 0.01, features.shape), groups, lambda: GMMDensity(1))
    assert gmm.shape == (20,) and np.isfinite(gmm).all()


def test_knn_honours_k():
    bank = np.array([[0.0], [1.0], [10.0]])
    query = np.array([[0.0]])
    assert KNNDistance(1).fit(bank).score(query)[0] == pytest.approx(0.0)
    assert KNNDistance(2).fit(bank).score(query)[0] == pytest.approx(0.5)
    assert KNNDistance(3).fit(bank).score(query)[0] == pytest.approx(11 / 3)
    with pytest.raises(ValueError, match="at least 4"):
        KNNDistance(4).fit(bank)


def test_smoothing_never_crosses_videos():
    model = build("aivad", {"smoothing_sigma": 3.0})
    model.features_ = {"velocity": None}
    model.calibration_ = {"velocity": {"min": 0.0, "scale": 1.0, "normal": 0.0}}
    # video 0 ends with a huge region score; video 1 is quiet from its first frame
    data = RegionData(
        ["a", "b"],
        np.array([10, 10]),
        video=np.array([0, 1]),
        frame=np.array([9, 0]),
        boxes=np.zeros((2, 4), np.float32),
        attributes={"velocity": np.zeros((2, 1))},
        valid={"velocity": np.ones(2, bool)},
    )
    a, b = model._video_scores(data, {"velocity": np.array([1000.0, 0.0])})
    assert a.frame_scores[-1] > 100
    assert np.allclose(b.frame_scores, 0.0)


def test_model_parameters_are_checked(model_store):
    store = FeatureStore(model_store["store"], read_only=True)
    with pytest.raises(UsageError, match="unknown parameter"):
        build("aivad", {"n_neighbours": 1})
    with pytest.raises(UsageError, match="unknown model"):
        build("nope")
    with pytest.raises(UsageError, match="must divide"):
        fit_model(store, "aivad", {"n_velocity_bins": 3}, "train")
    with pytest.raises(FeatureError, match="has no feature 'nope'"):
        fit_model(store, "fuvas", {"feature": "nope"}, "train")
    with pytest.raises(FeatureError, match="an embedding per clip or frame"):
        fit_model(store, "fuvas", {"feature": "velocity"}, "train")
    with pytest.raises(UsageError, match="no videos"):
        fit_model(store, "aivad", {}, "validation")


def test_blas_thread_setting_is_validated(model_store, monkeypatch):
    store = FeatureStore(model_store["store"], read_only=True)
    monkeypatch.setenv("VADCTL_BLAS_THREADS", "many")
    with pytest.raises(UsageError, match="VADCTL_BLAS_THREADS='many'"):
        fit_model(store, "fuvas", {}, "train")
    monkeypatch.setenv("VADCTL_BLAS_THREADS", "2")
    assert fit_model(store, "fuvas", {}, "train").calibration.n_frames == 6 * 40
