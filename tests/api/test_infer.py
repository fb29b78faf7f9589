"""`vadctl infer`: new files end to end for any model, the cache reused, annotated videos decoded back."""

from __future__ import annotations

import shutil

import decord
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner
from videos import Square, make_video
from weak_stores import fitted_plovad

from vadctl import api
from vadctl.cli import app
from vadctl.models.files import read_header
from vadctl.store import FeatureStore

runner = CliRunner()


@pytest.fixture(scope="module")
def aivad(model_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("infer")
    store = root / "store.zarr"
    shutil.copytree(model_store["store"], store)  # the session store stays as other tests expect it
    model = api.fit("aivad", store, root / "aivad.safetensors")
    new = root / "new"
    make_video(new / "cam_fast.avi", 40, seed=31, squares=[Square(4, 34, 2.5, 0.0), Square(-136, 30, 8.0, 0.0)])
    make_video(new / "cam_calm.avi", 36, seed=32, squares=[Square(10, 36, 3.0, 0.0)])
    return {"root": root, "store": store, "model": model, "new": new}


def red_minus_green(frame: np.ndarray, x: float, y: float) -> int:
    """How red the pixels around (x, y) are (the sources are gray: red is only what was drawn)."""
    x, y = round(x), round(y)
    patch = frame[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3].astype(int)
    return int((patch[..., 0] - patch[..., 1]).max())


def test_infer_scores_new_files_and_draws_what_it_found(aivad, tmp_path):
    out = tmp_path / "scores.parquet"
    report = api.infer([aivad["new"]], aivad["model"], aivad["store"], out, video_out=tmp_path / "annotated")
    assert sorted(report.videos) == ["cam_calm", "cam_fast"] and not report.failed
    frames = pl.read_parquet(out)
    assert frames.group_by("video").len().sort("video")["len"].to_list() == [36, 40]
    header = read_header(aivad["model"])
    recorded = {entry["name"] + "@" + entry["hash"] for entry in header["provenance"]["feature_entries"]}
    stored = FeatureStore(aivad["store"]).video("infer", "cam_fast").features
    assert set(stored) == recorded  # exactly the model's entries, nothing else
    regions = pl.read_parquet(api.regions_path(out)).filter(pl.col("video") == "cam_fast")
    flagged = frames.filter((pl.col("video") == "cam_fast") & pl.col("is_anomaly"))["frame"].to_list()
    assert flagged, "the fast square should be flagged"
    video = decord.VideoReader(str(tmp_path / "annotated" / "cam_fast.mp4"))
    assert len(video) == 40
    assert video[0].shape[0] > 64  # frame plus the score strip
    boxed = regions.filter(pl.col("frame").is_in(flagged)).sort("score", descending=True)
    row = boxed.row(0, named=True)
    frame = video[row["frame"]].asnumpy()
    middle_top = ((row["x1"] + row["x2"]) / 2, row["y1"])
    assert red_minus_green(frame, *middle_top) > 80, "a red box where the region is"
    assert red_minus_green(frame, 1, 30) > 80, "a red border on a flagged frame"
    calm = frames.filter(pl.col("video") == "cam_calm")
    if not calm["is_anomaly"].any():
        plain = decord.VideoReader(str(tmp_path / "annotated" / "cam_calm.mp4"))[5].asnumpy()
        assert red_minus_green(plain, 1, 30) < 40
    again = api.infer([aivad["new"]], aivad["model"], aivad["store"], tmp_path / "again.parquet")
    assert all(r.status == "up to date" for rep in again.extract_reports for r in rep.results)
    np.testing.assert_array_equal(pl.read_parquet(tmp_path / "again.parquet")["score"], frames["score"])


def test_infer_reports_unreadable_files_and_scores_the_rest(aivad, tmp_path):
    broken = tmp_path / "in" / "broken.mp4"
    broken.parent.mkdir()
    broken.write_bytes(b"not a video at all" * 100)
    good = shutil.copy(aivad["new"] / "cam_calm.avi", tmp_path / "in" / "good.avi")
    out = tmp_path / "s.parquet"
    args = ["infer", str(broken), str(good), "-m", str(aivad["model"]), "--store", str(aivad["store"]), "-o", str(out)]
    result = runner.invoke(app, [*args, "-q"])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "broken.mp4" in errors[0] and "cannot open video" in errors[0]
    assert pl.read_parquet(out)["video"].unique().to_list() == ["good"]
    only_bad = runner.invoke(
        app,
        [
            "infer",
            str(broken),
            "-m",
            str(aivad["model"]),
            "--store",
            str(aivad["store"]),
            "-o",
            str(tmp_path / "none.parquet"),
            "-q",
        ],
    )
    assert only_bad.exit_code == 1 and "broken.mp4" in only_bad.output
    assert not (tmp_path / "none.parquet").exists()


def test_infer_with_plovad_writes_classes_and_heatmap_boxes(tmp_path_factory, tmp_path):
    info = fitted_plovad(tmp_path_factory)
    store = tmp_path / "store.zarr"
    shutil.copytree(info["store"], store)
    expected = api.score(info["path"], store, "test", tmp_path / "t.parquet", videos=["tz0", "tz1"])
    boxed = pl.read_parquet(api.regions_path(expected))["video"].value_counts(sort=True)
    name = boxed["video"][0]  # the held-out zone video with the most heatmap boxes
    video = shutil.copy(info["videos"] / "test" / f"{name}.avi", tmp_path / "zone_walker.avi")
    out = tmp_path / "z.parquet"
    args = ["infer", str(video), "-m", str(info["path"]), "--store", str(store), "-o", str(out)]
    result = runner.invoke(app, [*args, "--video-out", str(tmp_path / "mp4"), "-q"])
    assert result.exit_code == 0, result.output
    videos = pl.read_parquet(tmp_path / "z.videos.parquet")
    assert videos["class"].to_list() == ["zone"] and videos["is_anomaly"].to_list() == [True]
    regions = pl.read_parquet(tmp_path / "z.regions.parquet")
    assert len(regions) == boxed["count"][0] > 0  # the same boxes as scoring the test split gave
    assert len(decord.VideoReader(str(tmp_path / "mp4" / "zone_walker.mp4"))) == 40
