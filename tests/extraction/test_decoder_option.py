"""`--decoder` from the command line, the API and job files to the store: the record says which
decoder read each video, entries decoded by decord keep the identity they always had, and PyAV's
are entries of their own (the same pixels today, but another FFmpeg build)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner
from videos import container_video, cut_in_half

from vadctl import api
from vadctl.cli import app
from vadctl.errors import UsageError
from vadctl.extraction.for_model import extract_jobs
from vadctl.extraction.recipe import ExtractRecipe
from vadctl.extraction.work import build_extractor
from vadctl.nightly.jobfile import extract_keywords
from vadctl.store import FeatureStore

runner = CliRunner()

# The keys of these entries before decoders could be chosen (vadctl at 7157628): stores written
# then stay valid, their entries found up to date.
DECORD_KEYS = ["flow@68b636fa04bd", "frames@e994ad65066d", "velocity@8a15212bf18a"]


def keys(**options) -> list[str]:
    recipe = ExtractRecipe.make("unused.zarr", "train", "frames,flow,velocity", resize="160x120", **options)
    return sorted(spec.key for spec in build_extractor(recipe).requested)


def test_decord_entries_keep_their_identity_and_pyav_ones_have_their_own():
    assert keys() == keys(decoder="decord") == keys(decoder="auto") == DECORD_KEYS
    pyav = keys(decoder="pyav")
    assert set(pyav).isdisjoint(DECORD_KEYS)
    assert ExtractRecipe.make("s.zarr", "train", "frames", decoder="auto").decoder == "decord"
    with pytest.raises(UsageError, match="--decoder 'vlc'"):
        ExtractRecipe.make("s.zarr", "train", "frames", decoder="vlc")
    assert "decoder" in extract_keywords()  # a job file's [extract] takes it


def test_extract_with_pyav_end_to_end(video_dir: Path, tmp_path: Path):
    stores = {}
    for decoder in ("pyav", "decord"):
        stores[decoder] = tmp_path / f"{decoder}.zarr"
        args = ["extract", str(video_dir), "--store", str(stores[decoder]), "-q", "--json"]
        done = runner.invoke(app, [*args, "--features", "frames,flow", "--decoder", decoder], catch_exceptions=False)
        assert done.exit_code == 0, done.output
        report = json.loads(done.stdout)
        assert report["extracted"] == 3
    pyav, decord = (FeatureStore(stores[d], read_only=True) for d in ("pyav", "decord"))
    for video in ("a", "b", "cam/c"):
        by_pyav, by_decord = pyav.video("train", video), decord.video("train", video)
        assert (by_pyav.decoder, by_decord.decoder) == ("pyav", "decord")
        assert set(by_pyav.features).isdisjoint(by_decord.features)
        for feature in ("frames", "flow"):
            spec = pyav.resolve(feature, "train")
            assert spec.params["decode"]["decoder"] == "pyav"
            assert "decoder" not in decord.resolve(feature, "train").params["decode"]
            mine = pyav.entry(by_pyav, spec)
            theirs = decord.entry(by_decord, decord.resolve(feature, "train"))
            for name in mine.array_names:  # the same pixels: the same features
                np.testing.assert_array_equal(mine[name], theirs[name])
    info = runner.invoke(app, ["store", "info", str(stores["pyav"]), "--videos", "--json"], catch_exceptions=False)
    assert {v["decoder"] for v in json.loads(info.stdout)["videos"]} == {"pyav"}
    planned = api.plan_extract([video_dir], stores["pyav"], "train", "frames,flow", decoder="decord")
    assert {p.action for p in planned} == {"update"}  # decord's entries are not PyAV's
    assert api.plan_extract([video_dir], stores["pyav"], "train", "frames,flow", decoder="pyav")[0].action == "skip"


def test_pyav_keeps_truncated_files_end_to_end(tmp_path: Path):
    root = tmp_path / "v"
    cut_in_half(container_video(root / "cut.mkv", 60))
    store = tmp_path / "s.zarr"
    report = api.extract([root], store, "train", "frames", decoder="pyav", keep_truncated=True)
    assert not report.failed
    record = FeatureStore(store, read_only=True).video("train", "cut")
    assert record.status == "truncated" and record.decoder == "pyav" and 0 < record.n_frames < 58
    failed = api.extract([root], tmp_path / "t.zarr", "train", "frames", decoder="pyav")
    assert "truncated: the file holds" in failed.failed[0].error


def test_infer_extracts_with_the_decoder_a_model_was_fitted_on():
    recipe = ExtractRecipe.make("s.zarr", "train", "frames", decoder="pyav")
    (spec,) = build_extractor(recipe).requested
    header = {"provenance": {"feature_entries": [spec.to_dict()]}}
    (job,) = extract_jobs(header, "model.vadctl")
    assert job.decode.decoder == "pyav" and job.expected == {"frames": spec.key}
