"""AI-VAD in the scene's geometry (scale-free velocity, velocity with the box's position) and its
frame-level motion attribute, checked against values computed by hand."""

from pathlib import Path

import numpy as np
import pytest

from vadctl import api
from vadctl.common.specs import ArraySpec, FeatureSpec, Fingerprint
from vadctl.errors import UsageError
from vadctl.models.aivad import AiVad, RegionData
from vadctl.models.density import GMMDensity, PCAError
from vadctl.models.files import load_model
from vadctl.models.fit import fit_model
from vadctl.models.velocity_form import (
    choose_components,
    choose_position,
    heldout_log_likelihood,
    marginal_log_density,
    position_gain,
)
from vadctl.scoring.score import score_model
from vadctl.store import FeatureStore, VideoRecord

N_FRAMES = 40
REGIONS = FeatureSpec("regions", 1, {"toy": "geometry"})
VELOCITY = FeatureSpec("velocity", 2, {"n_bins": 16, "upstream": {"regions": REGIONS.hash}})
HEIGHT, WIDTH = 100, 200


def regions(velocity: list[float], boxes: list[list[float]]) -> RegionData:
    n = len(velocity)
    return RegionData(
        ["v"],
        np.array([1]),
        np.zeros(n, np.int64),
        np.zeros(n, np.int64),
        np.asarray(boxes, np.float32),
        {"velocity": np.asarray(velocity, np.float64)[:, None]},
        {"velocity": np.ones(n, bool)},
        np.array([[WIDTH, HEIGHT]], np.float64),
    )


def test_scale_free_velocity_divides_by_the_box_height():
    data = regions([4.0, 2.0], [[0, 0, 10, 20], [10, 40, 30, 50]])  # heights 20 and 10
    out = AiVad(velocity_scale="box_height", velocity_position="none")._with_geometry(data)
    np.testing.assert_allclose(out, [[0.2], [0.2]])  # 4/20 and 2/10: the same speed in body heights


def test_velocity_position_appends_the_box_centre_in_frame_units():
    data = regions([4.0, 2.0], [[0, 0, 10, 20], [10, 40, 30, 50]])
    np.testing.assert_allclose(AiVad(velocity_position="y")._with_geometry(data), [[4.0, 0.10], [2.0, 0.45]])
    # x centres 5 and 20 of a 200-pixel-wide frame
    np.testing.assert_allclose(
        AiVad(velocity_position="xy")._with_geometry(data), [[4.0, 0.10, 0.025], [2.0, 0.45, 0.10]]
    )
    np.testing.assert_allclose(AiVad(velocity_position="none")._with_geometry(data), [[4.0], [2.0]])  # as stored
    np.testing.assert_allclose(AiVad()._with_geometry(data), [[4.0, 0.10], [2.0, 0.45]])  # "auto" loads y, then chooses
    assert AiVad(velocity_position="xy").velocity_dims_ == 3


@pytest.mark.parametrize("params", [{"velocity_scale": "metres"}, {"velocity_position": "z"}])
def test_unknown_geometry_is_a_one_line_error(params):
    with pytest.raises(UsageError, match=next(iter(params))):
        AiVad(**params)._check_params()


def test_pca_error_is_the_squared_distance_to_the_normal_subspace():
    t = np.arange(-2.0, 3.0)
    normal = np.stack([t, 2 * t], axis=1)  # a line through the origin, direction (1, 2)
    model = PCAError(0.98).fit(normal)
    # (1, 0) projects to (1, 2)/5; the residual (0.8, -0.4) has squared length 0.8
    np.testing.assert_allclose(model.score(np.array([[1.0, 0.0], [2.0, 4.0]])), [0.8, 0.0], atol=1e-9)
    again = PCAError(0.98).load_state(model.state())
    np.testing.assert_allclose(again.score(np.array([[1.0, 0.0]])), [0.8], atol=1e-9)


def _perspective_video(
    store: FeatureStore, split: str, name: str, odd: range = range(0), from_above: bool = False
) -> list[int]:
    """Two boxes a frame: far (top, 10 px tall) moving 1 px/frame, near (bottom, 40 px tall) moving 4.
    In `odd` frames the far box moves at the near box's 4 px/frame: a speed seen in training, but
    never up there. `from_above`: a camera without perspective, where either box moves at 1 or 4
    px/frame at random (position says nothing about speed)."""
    record = VideoRecord(
        split, name, f"/x/{name}.mp4", Fingerprint(1, 1, name), n_frames=N_FRAMES, fps=10, height=HEIGHT, width=WIDTH
    )
    store.add_video(record, np.array([[0, N_FRAMES]]))
    rng = np.random.default_rng(len(name) + 7 * len(odd))
    far, near = [20, 10, 30, 20], [100, 50, 140, 90]
    boxes = np.array([far, near] * N_FRAMES, np.float32)
    speed = np.tile([1.0, 4.0], N_FRAMES) * rng.normal(1.0, 0.05, 2 * N_FRAMES)
    if from_above:
        speed = rng.choice([1.0, 4.0], 2 * N_FRAMES) * rng.normal(1.0, 0.05, 2 * N_FRAMES)
    for t in odd:
        speed[2 * t] = 4.0
    counts = np.full((2 * N_FRAMES, 16), 10.0, np.float32)
    for spec, arrays in (
        (REGIONS, {"boxes": boxes, "scores": np.ones(2 * N_FRAMES, np.float32)}),
        (VELOCITY, {"magnitude_sum": (counts * speed[:, None] / 16).astype(np.float32), "count": counts}),
    ):
        specs = {k: ArraySpec(v.shape[1:], str(v.dtype), ragged=True) for k, v in arrays.items()}
        writer = store.entry_writer(record, spec, specs, N_FRAMES)
        writer.write(ragged=arrays, counts=np.full(N_FRAMES, 2))
        store.commit_entry(record, writer, writer.finish())
    return [int(t in odd) for t in range(N_FRAMES)]


def test_velocity_with_position_finds_a_speed_normal_elsewhere_but_not_there(tmp_path: Path):
    store = FeatureStore(tmp_path / "s.zarr", create=True)
    for i in range(4):
        _perspective_video(store, "train", f"t{i}")
    labels = _perspective_video(store, "test", "x", odd=range(15, 25))
    odd = np.asarray(labels, bool)
    margins = {}
    for position in ("none", "y"):
        params = {"velocity_position": position, "n_components_velocity": 2, "smoothing_sigma": 0.0}
        result = fit_model(store, "aivad", params, "train")
        (item,) = list(result.model.score(store, "test", ["x"]))
        margins[position] = item.frame_scores[odd].min() - item.frame_scores[~odd].max()
    assert margins["y"] > 0  # every odd frame above every normal one: the far box is too fast *there*
    assert margins["none"] < 0  # speed alone: 4 px/frame is what near boxes always do


def test_motion_attribute_fits_saves_loads_and_scores_like_the_fitted_model(video_dir: Path, tmp_path: Path):
    store = tmp_path / "s.zarr"
    features = ["flow", "regions", "velocity", "motion"]
    api.extract([video_dir], store, split="train", features=features, clip_len=4, clip_stride=4)
    params = {"use_motion_features": True, "use_deep_features": False, "n_folds": 3}
    path = api.fit("aivad", store, tmp_path / "m.safetensors", params)
    loaded = load_model(path)
    assert "motion" in loaded.model.features_ and "motion.components" in loaded.model.state()[0]
    frames, _ = score_model(loaded, FeatureStore(store, read_only=True), "train")
    fitted = fit_model(FeatureStore(store, read_only=True), "aivad", params, "train").model
    videos = sorted(frames["video"].unique().to_list())
    again = {s.video_id: s.frame_scores for s in fitted.score(FeatureStore(store, read_only=True), "train", videos)}
    for video, part in frames.group_by("video"):
        np.testing.assert_allclose(np.sort(part["score"].to_numpy()), np.sort(again[video[0]]), rtol=1e-6)


def test_a_mixture_marginal_is_its_weights_times_each_components_marginal():
    density = GMMDensity(2).load_state(
        {
            "weights": np.array([0.25, 0.75]),
            "means": np.array([[0.0, 0.0], [2.0, 4.0]]),
            "covariances": np.array([[[1.0, 0.5], [0.5, 2.0]], [[1.0, 0.0], [0.0, 1.0]]]),
            "precisions_cholesky": np.zeros((2, 2, 2)),  # unused by the marginal
        }
    )
    # y = 1: 0.25 N(1; 0, 2) + 0.75 N(1; 4, 1) = 0.25·e^(−1/4)/√(4π) + 0.75·e^(−9/2)/√(2π)
    by_hand = np.log(0.25 * np.exp(-0.25) / np.sqrt(4 * np.pi) + 0.75 * np.exp(-4.5) / np.sqrt(2 * np.pi))
    np.testing.assert_allclose(marginal_log_density(density, np.array([[1.0]]), slice(1, 2)), [by_hand])
    assert by_hand == pytest.approx(-2.8431, abs=1e-4)


def _camera(tmp_path: Path, from_above: bool) -> FeatureStore:
    store = FeatureStore(tmp_path / ("above.zarr" if from_above else "slant.zarr"), create=True)
    for i in range(4):
        _perspective_video(store, "train", f"t{i}", from_above=from_above)
    _perspective_video(store, "test", "x", odd=range(15, 25), from_above=from_above)
    return store


@pytest.mark.parametrize("from_above, chosen", [(False, "y"), (True, "none")])
def test_auto_keeps_position_only_where_the_cameras_training_videos_say_it_predicts_speed(
    tmp_path: Path, from_above: bool, chosen: str
):
    store = _camera(tmp_path, from_above)
    params = {"n_components_velocity": 2, "smoothing_sigma": 0.0, "n_folds": 4}
    auto = fit_model(store, "aivad", {**params, "velocity_position": "auto"}, "train").model
    assert auto.velocity_position_ == chosen and auto.velocity_dims_ == 1 + (chosen == "y")
    assert (auto.velocity_position_gain_ > 0) == (chosen == "y")
    fixed = fit_model(store, "aivad", {**params, "velocity_position": chosen}, "train").model
    (a,), (b,) = list(auto.score(store, "test", ["x"])), list(fixed.score(store, "test", ["x"]))
    np.testing.assert_allclose(a.frame_scores, b.frame_scores)  # the form it chose, exactly
    path = tmp_path / f"{chosen}.safetensors"
    fit_model(store, "aivad", {**params, "velocity_position": "auto"}, "train", out=path)
    loaded = load_model(path).model
    assert loaded.velocity_position == "auto" and loaded.velocity_position_ == chosen
    (c,) = list(loaded.score(store, "test", ["x"]))
    np.testing.assert_allclose(c.frame_scores, b.frame_scores, rtol=1e-9)


def test_the_held_out_gain_is_what_position_adds_to_predicting_speed_on_unseen_videos():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(6), 200)
    y = rng.uniform(0, 1, len(groups))
    slanted = np.stack([1 + 3 * y + rng.normal(0, 0.1, len(y)), y], axis=1)  # speed follows y
    # seen from above: two narrow walkways (y 0.1 or 0.9), on each walkers at 1 or 1.3 px/frame;
    # the joint mixture's two components go to the walkways, leaving speed one Gaussian within
    # each, where speed alone gets one component per pace: position costs (the gain is negative)
    rows = rng.choice([0.1, 0.9], len(y)) + rng.normal(0, 0.01, len(y))
    above = np.stack([rng.choice([1.0, 1.3], len(y)) + rng.normal(0, 0.05, len(y)), rows], axis=1)
    assert choose_position(slanted, groups, 1, 2, 10)[0] == "y"
    assert position_gain(slanted, groups, 1, 2, 10) > 1.0  # a spread of 0.87 px/frame against 0.1
    chosen, gain = choose_position(above, groups, 1, 2, 10)
    assert chosen == "none" and gain < -0.3
    with pytest.raises(ValueError, match="two videos"):
        position_gain(slanted, np.zeros(len(y)), 1, 2, 10)


def test_held_out_likelihood_scores_each_video_under_a_mixture_fitted_without_it():
    a, b = np.array([0.0, 1.0, 2.0]), np.array([4.0, 6.0])
    values, groups = np.concatenate([a, b])[:, None], np.array([0, 0, 0, 1, 1])

    def log_normal(x, sample):  # one component: the sample's mean and (maximum-likelihood) variance
        mean, var = sample.mean(), sample.var() + 1e-6
        return -0.5 * ((x - mean) ** 2 / var + np.log(2 * np.pi * var))

    by_hand = np.concatenate([log_normal(a, b), log_normal(b, a)]).mean()
    assert heldout_log_likelihood(values, groups, 1, n_folds=10) == pytest.approx(by_hand, rel=1e-6)


def test_the_component_count_is_the_smallest_near_the_best_held_out_likelihood():
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(6), 200)
    four_paces = (rng.choice([1.0, 3.0, 5.0, 7.0], len(groups)) + rng.normal(0, 0.1, len(groups)))[:, None]
    chosen, likelihood, _ = choose_components(four_paces, groups, 10)
    assert chosen == 4 and likelihood[4] > likelihood[2] + 1.0  # two components cannot hold four paces
    assert likelihood[8] < likelihood[4] + 0.01  # more do not predict unseen videos better
    few = np.repeat(np.arange(3), 12)  # three short videos of one pace: eight components overfit them
    chosen, likelihood, _ = choose_components(rng.normal(0, 1, (len(few), 2)), few, 10)
    assert chosen == 2 and likelihood[8] < likelihood[2] - 1.0
    with pytest.raises(ValueError, match="two videos"):
        choose_components(four_paces, np.zeros(len(groups)), 10)


def test_auto_components_fit_the_count_they_chose_and_survive_a_round_trip(tmp_path: Path):
    store = _camera(tmp_path, from_above=False)
    params = {"smoothing_sigma": 0.0, "n_folds": 4, "velocity_position": "y"}
    auto = fit_model(store, "aivad", {**params, "n_components_velocity": "auto"}, "train").model
    likelihood = auto.n_components_velocity_loglik_
    assert sorted(likelihood) == [2, 4, 8]
    best = max(likelihood.values())
    assert auto.n_components_velocity_ == min(k for k, v in likelihood.items() if v >= best - 0.01)
    fixed = fit_model(store, "aivad", {**params, "n_components_velocity": auto.n_components_velocity_}, "train").model
    (a,), (b,) = list(auto.score(store, "test", ["x"])), list(fixed.score(store, "test", ["x"]))
    np.testing.assert_allclose(a.frame_scores, b.frame_scores)  # the count it chose, exactly
    path = tmp_path / "auto.safetensors"
    fit_model(store, "aivad", {**params, "n_components_velocity": "auto"}, "train", out=path)
    loaded = load_model(path).model
    assert loaded.n_components_velocity == "auto" and loaded.n_components_velocity_ == auto.n_components_velocity_
    assert loaded.n_components_velocity_loglik_ == pytest.approx(likelihood)
    (c,) = list(loaded.score(store, "test", ["x"]))
    np.testing.assert_allclose(c.frame_scores, b.frame_scores, rtol=1e-9)
    arrays, meta = auto.state()
    for count, recorded, message in [
        ("auto", {**meta, "n_components_velocity": 3}, "auto chooses one of"),
        (2, {**meta, "n_components_velocity": 4}, "4 recorded, 2 in the parameters"),
        ("auto", {k: v for k, v in meta.items() if k != "n_components_velocity"}, "does not record the count"),
        ("auto", {**meta, "n_components_velocity_loglik": {"2": float("inf")}}, "loglik"),
    ]:
        model = AiVad(**{**params, "n_components_velocity": count})
        model.features_ = auto.features_
        with pytest.raises(ValueError, match=message):
            model.check_state(arrays, recorded)
    with pytest.raises(UsageError, match="n_components_velocity='three'"):
        fit_model(store, "aivad", {**params, "n_components_velocity": "three"}, "train")
