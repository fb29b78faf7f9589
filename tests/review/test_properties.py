"""Property-based tests: metrics against scikit-learn computed here on random multi-video data,
smoothing against a hand-written edge-padded convolution, and store round trips of ragged data
under random window sizes."""

import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, roc_auc_score

from vadctl.common.specs import ArraySpec, FeatureSpec, Fingerprint
from vadctl.models.scores import temporal_smooth
from vadctl.review.metrics import align, evaluate
from vadctl.store import FeatureStore, VideoRecord, zarrio

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ----- metrics ------------------------------------------------------------------------------------------------
@st.composite
def scored_videos(draw):
    """Several videos, each with random length, labels (some single-class) and scores with ties."""
    n_videos = draw(st.integers(1, 6))
    videos = []
    for v in range(n_videos):
        n = draw(st.integers(1, 25))
        kind = draw(st.sampled_from(["mixed", "mixed", "mixed", "normal", "anomalous"]))
        if kind == "mixed":
            labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
        else:
            labels = [int(kind == "anomalous")] * n
        scores = draw(st.lists(st.integers(0, 6).map(lambda k: k / 2 - 1), min_size=n, max_size=n))  # ties on purpose
        flags = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        videos.append((f"v{v:02d}", np.array(labels), np.array(scores, float), np.array(flags)))
    return videos


def tables(videos):
    rows = [(name, t, s[t], f[t]) for name, y, s, f in videos for t in range(len(y))]
    scores = pl.DataFrame(rows, schema=["video", "frame", "score", "is_anomaly"], orient="row")
    labels = pl.DataFrame(
        [(name, t, int(y[t])) for name, y, _, _ in videos for t in range(len(y))],
        schema=["video", "frame", "label"],
        orient="row",
    )
    return scores.sample(fraction=1.0, shuffle=True, seed=0), labels.reverse()  # order must not matter


@FAST
@given(scored_videos())
def test_metrics_equal_sklearn_on_random_videos(videos):
    scores, labels = tables(videos)
    joined, notes = align(scores, labels)
    metrics = evaluate(joined)
    assert notes == [] and metrics.frames == sum(len(y) for _, y, _, _ in videos)
    y = np.concatenate([y for _, y, _, _ in videos])
    s = np.concatenate([s for _, _, s, _ in videos])
    flags = np.concatenate([f for _, _, _, f in videos])
    assert metrics.anomalous == int(y.sum())
    if len(set(y)) == 2:
        assert metrics.micro_auroc == pytest.approx(roc_auc_score(y, s))
        assert metrics.average_precision == pytest.approx(average_precision_score(y, s))
        assert 0 <= metrics.eer <= 1
    else:
        assert metrics.micro_auroc is None and metrics.average_precision is None and metrics.eer is None
    mixed = {name: roc_auc_score(yv, sv) for name, yv, sv, _ in videos if len(set(yv)) == 2}
    single = sorted(name for name, yv, _, _ in videos if len(set(yv)) < 2)
    assert metrics.single_class_videos == single and metrics.macro_videos == len(mixed)
    if mixed:
        assert metrics.macro_auroc == pytest.approx(np.mean(list(mixed.values())))
    else:
        assert metrics.macro_auroc is None
    per_video = {m.video: m for m in metrics.videos}
    for name, yv, _, fv in videos:
        assert per_video[name].auroc == (pytest.approx(mixed[name]) if name in mixed else None)
        assert (per_video[name].frames, per_video[name].anomalous) == (len(yv), int(yv.sum()))
        assert per_video[name].flagged == int(fv.sum())
    tp, fp = int((flags & (y == 1)).sum()), int((flags & (y == 0)).sum())
    fn, tn = int((~flags & (y == 1)).sum()), int((~flags & (y == 0)).sum())
    assert metrics.confusion == {"tn": tn, "fp": fp, "fn": fn, "tp": tp}
    assert metrics.precision == pytest.approx(tp / (tp + fp) if tp + fp else 0.0)
    assert metrics.recall == pytest.approx(tp / (tp + fn) if tp + fn else 0.0)


# ----- smoothing ----------------------------------------------------------------------------------------------
def smooth_by_hand(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian kernel truncated at 4σ, normalised to mass 1, over the series padded with its own end values."""
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(x, radius, mode="edge")
    return np.convolve(padded, kernel, mode="valid")


series = st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=60).map(np.array)
sigmas = st.floats(0.3, 6.0)


@FAST
@given(series, sigmas)
def test_smoothing_is_an_edge_padded_gaussian_of_one_video(x, sigma):
    out = temporal_smooth(x, sigma)
    np.testing.assert_allclose(out, smooth_by_hand(x, sigma), atol=1e-9 * (1 + np.abs(x).max()))
    np.testing.assert_allclose(temporal_smooth(x[::-1], sigma), out[::-1], atol=1e-9 * (1 + np.abs(x).max()))
    assert x.min() - 1e-9 <= out.min() and out.max() <= x.max() + 1e-9  # a weighted mean of the video's own scores


@FAST
@given(st.integers(30, 80), st.floats(0.3, 3.0), st.data())
def test_smoothing_keeps_the_mass_of_a_spike_away_from_the_ends(n, sigma, data):
    radius = int(4 * sigma + 0.5)
    where = data.draw(st.integers(radius, n - 1 - radius))
    spike = np.zeros(n)
    spike[where] = 1.0
    out = temporal_smooth(spike, sigma)
    assert out.sum() == pytest.approx(1.0)
    assert out.argmax() == where
    assert np.all(out[: max(where - radius, 0)] == 0) and np.all(out[where + radius + 1 :] == 0)  # nothing leaks


# ----- store round trips --------------------------------------------------------------------------------------
@st.composite
def ragged_video(draw):
    n = draw(st.integers(1, 30))
    counts = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), np.int64)
    cuts, start = [], 0
    while start < n:
        size = draw(st.integers(1, n - start))
        cuts.append(size)
        start += size
    width = draw(st.integers(1, 3))
    chunk_bytes = draw(st.sampled_from([8, 24, 64, 200, 2 * 1024 * 1024]))  # small: chunks fill mid-window
    return n, counts, cuts, width, chunk_bytes, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=25, deadline=None)
@given(ragged_video())
def test_ragged_and_dense_data_round_trip_under_random_windows(case):
    n, counts, windows, width, chunk_bytes, seed = case
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n, width)).astype(np.float32)
    rows = rng.integers(-1000, 1000, (int(counts.sum()), width, 2)).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    spec = FeatureSpec("prop", 1, {"width": width})
    arrays = {"dense": ArraySpec((width,), "float32"), "rows": ArraySpec((width, 2), "int32", ragged=True)}
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(zarrio, "CHUNK_BYTES", chunk_bytes):
        store = FeatureStore(Path(folder) / "s.zarr", create=True)
        record = VideoRecord("train", "v", "/x/v.mp4", Fingerprint(1, 1, "v"), n_frames=n, fps=10.0)
        store.add_video(record, np.array([[0, n]]))
        writer = store.entry_writer(record, spec, arrays, n)
        start = 0
        for size in windows:
            stop = start + size
            writer.write(
                dense={"dense": dense[start:stop]},
                ragged={"rows": rows[offsets[start] : offsets[stop]]},
                counts=counts[start:stop],
            )
            start = stop
        store.commit_entry(record, writer, writer.finish())
        entry = FeatureStore(Path(folder) / "s.zarr", read_only=True).entry(store.video("train", "v"), spec)
        np.testing.assert_array_equal(entry["dense"], dense)
        np.testing.assert_array_equal(entry["rows"], rows)
        np.testing.assert_array_equal(entry.offsets, offsets)
        np.testing.assert_array_equal(entry.row_index(), np.repeat(np.arange(n), counts))
        for t in rng.integers(0, n, 3):
            np.testing.assert_array_equal(
                entry.read("rows", offsets[t], offsets[t + 1]), rows[offsets[t] : offsets[t + 1]]
            )
