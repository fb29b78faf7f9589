"""Stores written by the previous release (schema 1) still open, read and score without being
re-extracted, and migrate in place when opened for writing, even when migration is killed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from urllib.parse import quote

import numpy as np
import polars as pl
import pytest
import zarr
from snapshots import assert_same, snapshot
from videos import Square, make_video
from zarr.codecs import BloscCodec

from vadctl import api
from vadctl.common.faults import EXIT_CODE
from vadctl.common.specs import FeatureSpec
from vadctl.store import FeatureStore

FEATURES = ("flow", "regions", "velocity", "motion")
LEGACY_BLOSC = BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")


def legacy_key(video_id: str) -> str:
    """How vadctl 0.1 named a video's group ('~' unescaped)."""
    key = quote(video_id, safe="")
    return "%5F" + key[1:] if key.startswith("__") else key


def write_legacy(source: Path, target: Path) -> None:
    """Copy a store's data into the schema-1 layout vadctl 0.1 wrote: `_locks/` inside the
    hierarchy, nested chunk keys, chunks of fill values not written, no manifests, no `group`,
    `files` or `frame_size` in the record, the clip table always at `clips`."""
    fs = FeatureStore(source, read_only=True)
    root = zarr.open_group(target, mode="w", zarr_format=3)
    root.attrs["vadctl_store"] = {"schema": 1, "created_by": "0.1.0", "created_at": "2026-11-01T00:00:00+00:00"}
    root.require_group("videos")
    locks = root.require_group("_locks")
    for split in fs.splits():
        for record in fs.videos(split):
            group = root.require_group(f"videos/{split}/{legacy_key(record.video_id)}")
            (target / "_locks" / f"{split}.{legacy_key(record.video_id)}.lock").write_text("")
            group.create_array("clips", data=fs.clip_table(record), compressors=LEGACY_BLOSC)
            features = {}
            for key, summary in record.features.items():
                spec = FeatureSpec.from_dict(summary)
                entry = fs.entry(record, spec)
                node = group.create_group(key)
                node.attrs["spec"] = spec.to_dict()
                names = entry.array_names + (["offsets"] if entry.offsets is not None else [])
                for name in names:
                    data = entry[name]
                    array = node.create_array(
                        name,
                        shape=data.shape,
                        chunks=(max(1, min(len(data), 7)), *data.shape[1:]),
                        dtype=data.dtype,
                        compressors=LEGACY_BLOSC,
                        fill_value=0,
                    )
                    array[...] = data
                kept = ("name", "version", "params", "axis", "hash", "index", "rows", "committed_at")
                features[key] = {k: v for k, v in summary.items() if k in kept}
            attrs = {k: v for k, v in record.to_attrs().items() if k not in ("clips", "clips_files")}
            group.attrs["vadctl_video"] = {**attrs, "features": features}
    assert locks is not None


@pytest.fixture(scope="module")
def legacy(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("legacy")
    videos = base / "videos"
    for i, name in enumerate(("a", "b~1", "c")):
        make_video(videos / f"{name}.avi", 36, seed=i, squares=[Square(4 + 6 * i, 22, 3.0, 0.0)])
    current = base / "current.zarr"
    api.extract([videos], current, "train", FEATURES, clip_len=8, clip_stride=4)
    old = base / "legacy.zarr"
    write_legacy(current, old)
    return {"videos": videos, "current": current, "legacy": old, "data": snapshot(current)}


def nested_chunk_gaps(store: Path) -> int:
    """Chunks vadctl 0.1 skipped because they held only fill values (regions' labels are all 0)."""
    return sum(1 for p in store.rglob("labels/zarr.json") if not (p.parent / "c").exists())


def test_the_fixture_has_the_old_layout(legacy):
    assert (legacy["legacy"] / "_locks").is_dir() and nested_chunk_gaps(legacy["legacy"]) > 0
    assert (legacy["legacy"] / "videos" / "train" / "b~1").is_dir()


def test_a_legacy_store_is_read_fitted_and_scored_as_it_is(legacy, tmp_path: Path):
    store = tmp_path / "legacy.zarr"
    shutil.copytree(legacy["legacy"], store)
    fs = FeatureStore(store, read_only=True)
    assert fs.schema == 1 and [r.video_id for r in fs.videos("train")] == ["a", "b~1", "c"]
    assert_same(snapshot(store), legacy["data"])
    for model in ("aivad", "fuvas"):
        path = api.fit(model, store, tmp_path / f"{model}.safetensors")
        scores = pl.read_parquet(api.score(path, store, "train", tmp_path / f"{model}.parquet"))
        fresh = pl.read_parquet(
            api.score(
                api.fit(model, legacy["current"], tmp_path / f"{model}-new.safetensors"),
                legacy["current"],
                "train",
                tmp_path / f"{model}-new.parquet",
            )
        )
        np.testing.assert_allclose(scores["score"], fresh["score"], rtol=1e-9)
    assert (store / "_locks").is_dir(), "reading must not change a store"


def test_opening_for_writing_migrates_in_place_without_re_extracting(legacy, tmp_path: Path):
    store = tmp_path / "legacy.zarr"
    shutil.copytree(legacy["legacy"], store)
    report = api.extract([legacy["videos"]], store, "train", FEATURES, clip_len=8, clip_stride=4)
    assert report.count("up to date") == 3 and report.count("extracted") == 0
    fs = FeatureStore(store, read_only=True)
    assert fs.schema == 2 and not (store / "_locks").exists()
    assert fs.verify(deep=True)[1] == []
    assert_same(snapshot(store), legacy["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zarr's walker meets nothing that is not Zarr
        list(zarr.open_group(store, mode="r").members(max_depth=None))


@pytest.mark.parametrize(
    "point",
    [
        "store.migrate.renamed",
        "store.migrate.before_record@2",
        "store.migrate.before_locks",
        "store.migrate.before_schema",
    ],
)
def test_a_killed_migration_completes_on_the_next_open(legacy, tmp_path: Path, point: str):
    store = tmp_path / "legacy.zarr"
    shutil.copytree(legacy["legacy"], store)
    code = f"from vadctl.store import FeatureStore; FeatureStore({str(store)!r})"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "VADCTL_FAULT": point}, capture_output=True)
    assert done.returncode == EXIT_CODE, done.stderr
    assert_same(snapshot(store), legacy["data"])  # readable in between
    FeatureStore(store)  # completes
    fs = FeatureStore(store, read_only=True)
    assert fs.schema == 2 and fs.verify(deep=True)[1] == []
    assert_same(snapshot(store), legacy["data"])
