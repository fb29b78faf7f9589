"""`vadctl score --workers N`: videos scored in N processes give the tables a serial run gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from vadctl import api
from vadctl.cli import app
from vadctl.demo import generate


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    base = tmp_path_factory.mktemp("score_workers")
    data = generate(base / "data", n_train=3, n_test=3, n_frames=40)
    store = base / "s.zarr"
    features = ["flow", "regions", "velocity"]
    for root, split in ((data.train, "train"), (data.test, "test")):
        assert not api.extract([root], store, split, features).failed
    models = {"aivad": api.fit("aivad", store, base / "aivad.safetensors", {"n_velocity_bins": 4})}
    return store, models


@pytest.mark.parametrize("model", ["aivad"])
def test_scores_from_two_workers_equal_serial_scores(fitted, tmp_path: Path, model: str):
    store, models = fitted
    serial = api.score(models[model], store, "test", tmp_path / "serial.parquet")
    scored: list[str] = []
    parallel = api.score(
        models[model], store, "test", tmp_path / "par.parquet", workers=2, progress=lambda e, **f: scored.append(e)
    )
    assert scored.count("video_scored") == 3
    assert_frame_equal(_scores(parallel), _scores(serial))
    assert_frame_equal(_scores(api.regions_path(parallel)), _scores(api.regions_path(serial)))


def _scores(path: Path) -> pl.DataFrame:
    """A scores table without what differs between any two runs (which run, and when)."""
    table = pl.read_parquet(path)
    assert table["run_id"].n_unique() == 1
    return table.drop("run_id", "scored_at")


def test_score_workers_zero_is_refused(fitted, tmp_path: Path):
    store, models = fitted
    args = ["score", "-m", str(models["aivad"]), "-s", str(store), "-o", str(tmp_path / "x.parquet"), "--workers", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--workers 0" in result.output
    assert not (tmp_path / "x.parquet").exists()
