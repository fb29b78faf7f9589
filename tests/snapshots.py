"""Comparing stores: every committed array of every video, read through the store API."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vadctl.common.specs import FeatureSpec
from vadctl.store import FeatureStore


def snapshot(store: Path, split: str = "train") -> dict:
    fs = FeatureStore(store, read_only=True)
    data = {}
    for record in fs.videos(split):
        data[(record.video_id, "clips", "clips")] = fs.clip_table(record)
        for summary in record.features.values():
            entry = fs.entry(record, FeatureSpec.from_dict(summary))
            for name in entry.array_names + (["offsets"] if entry.offsets is not None else []):
                data[(record.video_id, summary["name"], name)] = entry[name]
    return data


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=str(key))


def assert_intact(store: Path) -> None:
    """Every committed entry of the store passes the deep check (every file re-hashed)."""
    fs = FeatureStore(store, read_only=True)
    checked, problems = fs.verify(deep=True)
    assert problems == [] and checked > 0
