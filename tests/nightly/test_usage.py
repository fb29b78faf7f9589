"""`store gc` and the models in use: a deployed model's entries survive gc whatever else is in
the store. Told nothing, gc keeps every entry; told model files, job files or results datasets, it
keeps what any of them needs, including what the last run scored with (even after the model file
was replaced)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from nightly import copy_archive
from typer.testing import CliRunner

from vadctl import api
from vadctl.cli import app
from vadctl.nightly.usage import entries_in_use, model_entries
from vadctl.store import FeatureStore

runner = CliRunner()
MODEL_PARAMS = {"n_velocity_bins": 4, "velocity_position": "none", "smoothing_sigma": 3.0}  # tests/nightly.py


def vadctl(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def site(nightly_archive: Path, tmp_path: Path) -> Path:
    """The archive after one nightly run, then velocity extracted again with n_bins=8 (newer)."""
    job = copy_archive(nightly_archive, tmp_path / "site")
    assert api.run(job).exit_code == 0
    time.sleep(1.1)  # commit times have one-second resolution: the n_bins=8 entries are newer
    store = job.parent / "archive.zarr"
    for root, split in (("train", "train"), ("cam1", "test")):
        assert not api.extract([job.parent / root], store, split, ["velocity"], ["velocity.n_bins=8"]).failed
    return job


def velocity_keys(store: Path) -> tuple[str, str]:
    record = FeatureStore(store, read_only=True).video("test", "c0")
    keys = sorted((s["params"]["n_bins"], k) for k, s in record.features.items() if s["name"] == "velocity")
    assert [n for n, _ in keys] == [8, 16]
    return keys[1][1], keys[0][1]  # (default, n_bins=8)


def test_gc_told_nothing_never_breaks_the_deployed_model(site: Path):
    root = site.parent
    store, model = root / "archive.zarr", root / "models" / "aivad.safetensors"
    default, _ = velocity_keys(store)
    assert default in model_entries(model)
    done = vadctl("store", "gc", store, "--yes")
    assert done.exit_code == 0, done.output
    assert "kept 8 older entries" in done.output and "--job JOB.toml" in done.output
    scored = vadctl("score", "-m", model, "--store", store, "--split", "test", "-o", root / "scores.parquet", "-q")
    assert scored.exit_code == 0, scored.output  # before: "model was fitted on velocity@…; 4 video(s) … lack it"
    kept = vadctl("store", "gc", store, "--yes", "--keep-for", model, "--json")
    report = json.loads(kept.output)
    assert report["removals"] == [] and {k["why"] for k in report["kept"]} == {f"needed by model {model}"}


def test_gc_keeps_what_the_last_run_scored_with_after_the_model_file_is_replaced(site: Path):
    root = site.parent
    store, model, results = root / "archive.zarr", root / "models" / "aivad.safetensors", root / "results"
    default, wide = velocity_keys(store)
    api.fit("aivad", store, model, {**MODEL_PARAMS, "velocity_feature": wide})  # redeployed on n_bins=8
    assert default not in model_entries(model) and wide in model_entries(model)

    only_model = api.gc(store, keep_for=[model])  # told only of the new file: the old entries may go
    assert {r.key for r in only_model.removals if r.key} == {default}
    with_results = api.gc(store, keep_for=[model], results=[results], days=0)  # the last run counts, any age
    assert with_results.removals == [] and all("model aivad (scored" in k.why for k in with_results.kept)
    in_use = entries_in_use(store, jobs=[site]).entries  # the job: its model, its [extract], its results
    assert {default, wide} <= set(in_use)
    done = vadctl("store", "gc", store, "--yes", "--job", site)
    assert done.exit_code == 0, done.output
    assert default in FeatureStore(store, read_only=True).video("test", "c0").features


def test_gc_refuses_a_job_of_another_store_and_days_alone(site: Path, tmp_path: Path):
    other = tmp_path / "other.zarr"
    api.extract([site.parent / "cam1"], other, "test", ["regions"])
    wrong = vadctl("store", "gc", other, "--job", site)
    assert wrong.exit_code == 2 and "its store is" in wrong.output and len(wrong.output.strip().splitlines()) == 1
    days = vadctl("store", "gc", other, "--days", "3")
    assert days.exit_code == 2 and "--days" in days.output
