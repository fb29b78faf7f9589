"""Thresholds come from scores of models that never saw the scored videos, computed here independently.

AI-VAD cross-fits: every training video is scored by a density fitted on the other videos only
(leave-one-video-out when there are at most `n_folds` videos). FFP and the scene-aware model hold
out whole videos: they never reach fitting, and the μ+3σ threshold comes from them alone. Each
reference below is computed in the test from what the store holds (scikit-learn, numpy, the fitted
network run directly), never by the code under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from neural_stores import FFP_PARAMS, ffp_store, scene_store
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import GroupKFold
from typer.testing import CliRunner

from vadctl.cli import app
from vadctl.models import build
from vadctl.models.files import read_header
from vadctl.models.fit import fit_model
from vadctl.store import FeatureStore


# ----- AI-VAD: leave-one-video-out calibration -------------------------------------------------------------
def velocity_rows(store: FeatureStore, spec, video_id: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(features, frame of each row, n_frames): mean flow magnitude per region (AI-VAD with one bin),
    from the stored sums and counts."""
    record = store.video("train", video_id)
    entry = store.entry(record, spec)
    sums, counts = entry["magnitude_sum"].sum(axis=1), entry["count"].sum(axis=1)
    features = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)[:, None]
    frames = np.repeat(np.arange(record.n_frames), np.diff(entry.offsets))
    return features, frames, record.n_frames


def gmm_scores(train: np.ndarray, query: np.ndarray) -> np.ndarray:
    gmm = GaussianMixture(n_components=2, covariance_type="full", reg_covar=1e-6, random_state=0).fit(train)
    return -gmm.score_samples(query)


# AI-VAD on its velocity GMM alone (speed only, no position, no motion attribute): what the
# reference below recomputes by hand with scikit-learn.
VELOCITY_ALONE = {"velocity_position": "none", "n_components_velocity": 2, "use_motion_features": False}


def reference_aivad(store: FeatureStore, spec, videos: list[str], n_folds: int) -> dict:
    """Region scores of every training video from GMMs fitted without it, and AI-VAD's statistics."""
    rows = [velocity_rows(store, spec, v) for v in videos]
    features = np.concatenate([r[0] for r in rows])
    groups = np.concatenate([np.full(len(r[0]), i) for i, r in enumerate(rows)])
    raw = np.empty(len(features))
    for fit_rows, held in GroupKFold(n_splits=min(n_folds, len(videos))).split(features, groups=groups):
        assert not set(groups[fit_rows]) & set(groups[held])  # the scoring model never saw the video
        raw[held] = gmm_scores(features[fit_rows], features[held])
    low, high = raw.min(), np.percentile(raw, 99.0)
    normalized = (raw - low) / (high - low)
    per_frame, maxima = [], []
    for i, (_, frames, n) in enumerate(rows):
        best = np.full(n, -np.inf)
        np.maximum.at(best, frames, normalized[groups == i])
        per_frame.append(best)
        maxima.append(best[np.isfinite(best)])
    normal = np.median(np.concatenate(maxima))
    frame_scores = np.concatenate([np.where(np.isfinite(b), b, normal) for b in per_frame])
    in_sample = gmm_scores(features, features)
    return {"min": low, "scale": high - low, "normal": normal, "frames": frame_scores, "in_sample": in_sample}


def robust_threshold(scores: np.ndarray) -> float:
    """The default rule robust:3 computed here: median + 3·(q84.13 − median)."""
    median = np.median(scores)
    return median + 3 * (np.percentile(scores, 84.13) - median)


@pytest.mark.parametrize("n_folds", [10, 3])  # 6 training videos: leave-one-video-out, then group 3-fold
def test_aivad_calibration_comes_from_models_that_never_saw_the_video(model_store, n_folds):
    store = FeatureStore(model_store["store"], read_only=True)
    videos = [r.video_id for r in store.videos("train")]
    result = fit_model(store, "aivad", {**VELOCITY_ALONE, "smoothing_sigma": 0.0, "n_folds": n_folds}, "train")
    spec = result.model.features_["velocity"]
    expected = reference_aivad(store, spec, videos, n_folds)
    calibration = result.model.calibration_["velocity"]
    assert calibration["min"] == pytest.approx(expected["min"], rel=1e-4, abs=1e-6)
    assert calibration["scale"] == pytest.approx(expected["scale"], rel=1e-4)
    assert calibration["normal"] == pytest.approx(expected["normal"], rel=1e-4, abs=1e-6)
    # the frame threshold: statistics of those held-out frame scores (no smoothing here)
    frames = expected["frames"]
    assert result.calibration.method == "crossfit" and result.calibration.videos == videos
    assert result.calibration.n_frames == len(frames) == 6 * 40
    assert result.calibration.mean == pytest.approx(frames.mean(), rel=1e-4)
    assert result.calibration.std == pytest.approx(frames.std(), rel=1e-4)
    assert result.calibration.threshold("sigma:3") == pytest.approx(frames.mean() + 3 * frames.std(), rel=1e-4)
    assert result.calibration.threshold() == pytest.approx(robust_threshold(frames), rel=1e-3)  # the default
    # in-sample scores are lower (each video vouches for itself): the test tells the two apart
    assert expected["in_sample"].min() != pytest.approx(expected["min"], rel=1e-3)


def test_aivad_smoothing_of_heldout_scores_stays_within_each_video(model_store):
    from scipy.ndimage import gaussian_filter1d

    store = FeatureStore(model_store["store"], read_only=True)
    videos = [r.video_id for r in store.videos("train")]
    plain = fit_model(store, "aivad", {**VELOCITY_ALONE, "smoothing_sigma": 0.0}, "train")
    smooth = fit_model(store, "aivad", {**VELOCITY_ALONE, "smoothing_sigma": 3.0}, "train")
    expected = reference_aivad(store, plain.model.features_["velocity"], videos, 10)["frames"].reshape(6, 40)
    smoothed = np.concatenate([gaussian_filter1d(v, 3.0, mode="nearest") for v in expected])
    assert smooth.calibration.mean == pytest.approx(smoothed.mean(), rel=1e-4)
    assert smooth.calibration.std == pytest.approx(smoothed.std(), rel=1e-4)


def test_cli_fit_prints_the_calibration_it_saved(model_store, tmp_path):
    """The printed threshold, μ and σ are the model file's, and those are the held-out statistics."""
    store = FeatureStore(model_store["store"], read_only=True)
    videos = [r.video_id for r in store.videos("train")]
    path = tmp_path / "m.safetensors"
    args = ["fit", "-m", "aivad", "-s", str(model_store["store"]), "-o", str(path), "-p", "smoothing_sigma=0"]
    args += ["-p", "velocity_position=none", "-p", "use_motion_features=false"]  # the 1-D GMM computed here,
    args += ["-p", "n_components_velocity=2"]  # with its two components
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    header = read_header(path)
    spec = build("aivad").select_features(store, "train")["velocity"]
    frames = reference_aivad(store, spec, videos, 10)["frames"]
    calibration = header["calibration"]
    assert calibration["mean"] == pytest.approx(frames.mean(), rel=1e-4)
    assert calibration["threshold"] == pytest.approx(robust_threshold(frames), rel=1e-3)
    assert calibration["median"] == pytest.approx(np.median(frames), rel=1e-3)
    output = " ".join(result.output.split())  # rich wraps long lines
    printed = f"threshold robust:3: {calibration['threshold']:.6g} (median {calibration['median']:.6g}, σ̂ "
    assert printed in output and f"μ {calibration['mean']:.6g}, σ {calibration['std']:.6g}" in output
    assert f"{len(frames)} held-out normal frames, crossfit on 6 video(s)" in output


# ----- FFP: held-out videos never reach fitting; the thresholds come from them ------------------------------
TRAIN_STEPS = {**FFP_PARAMS, "steps": 4}


def generator_weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.generator_.state_dict().items()}


def ffp_psnr(generator, frames: np.ndarray, history: int = 4) -> np.ndarray:
    """PSNR of every frame, by hand: the generator on frames t-4..t-1 in [-1, 1], squared error on
    the [0, 1] scale; frames without a full history take the first prediction's PSNR."""
    import torch

    unit = frames.astype(np.float32) / 127.5 - 1.0  # (n, 1, R, R)
    targets = np.arange(history, len(frames))
    inputs = np.stack([unit[t - history : t].reshape(-1, *unit.shape[2:]) for t in targets])
    with torch.no_grad():
        predicted = generator.cpu().float()(torch.from_numpy(inputs).contiguous()).numpy()
    error = ((predicted - unit[targets]) / 2) ** 2
    psnr = 10 * np.log10(1 / error.reshape(len(targets), -1).mean(axis=1))
    return np.concatenate([np.full(history, psnr[0]), psnr])


def frames_of(store: FeatureStore, spec, video_id: str) -> np.ndarray:
    data = store.entry(store.video("train", video_id), spec)["data"]
    return data[:, None] if data.ndim == 3 else data.transpose(0, 3, 1, 2)


def test_ffp_threshold_comes_from_held_out_videos_that_never_reach_fitting(tmp_path_factory):
    info = ffp_store(tmp_path_factory)
    store = FeatureStore(info["store"], read_only=True)
    videos = [r.video_id for r in store.videos("train")]
    result = fit_model(store, "ffp", TRAIN_STEPS, "train", validation_fraction=0.4, seed=3)
    held = result.calibration.videos
    fit_videos = [v for v in videos if v not in held]
    assert len(held) == 2 and result.calibration.method == "holdout" and result.fit_videos == fit_videos
    # fitting saw exactly the other videos: a model trained here on them alone has the same weights
    direct = build("ffp", TRAIN_STEPS)
    direct.select_features(store, "train")
    direct.fit(store, "train", fit_videos)
    mine, theirs = generator_weights(direct), generator_weights(result.model)
    assert all(np.array_equal(mine[k], theirs[k]) for k in mine)
    # the frame threshold: μ+3σ of −PSNR on the held-out videos' frames, computed here
    spec = result.model.features_["frames"]
    scores = {v: -ffp_psnr(result.model.generator_, frames_of(store, spec, v)) for v in videos}
    heldout = np.concatenate([scores[v] for v in held])
    assert result.calibration.n_frames == len(heldout)
    assert result.calibration.mean == pytest.approx(heldout.mean(), rel=1e-4)
    assert result.calibration.std == pytest.approx(heldout.std(), rel=1e-3)
    fitted = np.concatenate([scores[v] for v in fit_videos])
    assert abs(fitted.mean() - heldout.mean()) > 1e-3 * abs(heldout.mean())  # the two sources differ
    # the localization threshold: μ + 3σ of the held-out frames' peak (blurred) errors
    peaks = []
    for v in held:
        frames = frames_of(store, spec, v)
        _, _, maps = result.model.predict(frames)
        peaks.append(maps.max(axis=(1, 2)))
    peaks = np.concatenate(peaks)
    pixel = result.model.pixel_calibration_
    assert pixel["frames"] == len(peaks) == sum(len(frames_of(store, spec, v)) - 4 for v in held)
    assert pixel["threshold"] == pytest.approx(peaks.mean() + 3 * peaks.std(), rel=1e-4)


# ----- scene-aware: the same rule ---------------------------------------------------------------------------
SCENE_STEPS = {
    "mode": "reconstruction",
    "thumb": 8,
    "d_model": 32,
    "latent_dim": 4,
    "heads": 2,
    "layers": 1,
    "dropout": 0.0,
    "steps": 3,
    "batch_size": 8,
    "device": "cpu",
}


def autoencoder_weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.net_.state_dict().items()}


def test_sceneaware_threshold_comes_from_held_out_videos_that_never_reach_fitting(tmp_path_factory):
    info = scene_store(tmp_path_factory)
    store = FeatureStore(info["store"], read_only=True)
    videos = [r.video_id for r in store.videos("train")]
    result = fit_model(store, "sceneaware", SCENE_STEPS, "train", validation_fraction=0.25, seed=1)
    held = result.calibration.videos
    fit_videos = [v for v in videos if v not in held]
    assert len(held) == 4 and result.calibration.method == "holdout" and result.fit_videos == fit_videos
    direct = build("sceneaware", SCENE_STEPS)
    direct.select_features(store, "train")
    direct.fit(store, "train", fit_videos)
    mine, theirs = autoencoder_weights(direct), autoencoder_weights(result.model)
    assert all(np.array_equal(mine[k], theirs[k]) for k in mine)
    np.testing.assert_array_equal(direct.mean_, result.model.mean_)  # standardised with fit videos only
    # μ and σ of the held-out videos' frame scores (computed here from the model's per-video scores)
    scores = {s.video_id: s.frame_scores for s in result.model.score(store, "train", videos)}
    heldout = np.concatenate([scores[v] for v in held])
    assert result.calibration.n_frames == len(heldout)
    assert result.calibration.mean == pytest.approx(heldout.mean(), rel=1e-5)
    assert result.calibration.std == pytest.approx(heldout.std(), rel=1e-4)
    fitted = np.concatenate([scores[v] for v in fit_videos])
    assert abs(fitted.mean() - heldout.mean()) > 1e-3 * abs(heldout.mean())


def test_rule_boundaries_and_a_small_sigma():
    from vadctl.errors import UsageError
    from vadctl.models.calibration import Calibration, parse_rule
    from vadctl.models.scores import VideoScores

    assert parse_rule("percentile:0") == ("percentile", 0.0) and parse_rule("percentile:100") == ("percentile", 100.0)
    assert parse_rule("sigma:0") == ("sigma", 0.0) and parse_rule("robust:0") == ("robust", 0.0)
    for bad in ("percentile:-0.1", "percentile:100.1", "sigma:-1", "sigma:inf"):
        with pytest.raises(UsageError):
            parse_rule(bad)
    values = np.array([1.0, 2.0] * 50)  # mean 1.5, σ 0.5 (below 1: must not be read as "no spread")
    cal = Calibration.from_scores([VideoScores("v", values)], "holdout")
    assert cal.threshold("sigma:3") == pytest.approx(1.5 + 3 * 0.5)
    assert cal.threshold("sigma:0") == pytest.approx(1.5)
