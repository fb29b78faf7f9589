"""The feature store (see `feature_store` for the layout and the commit rule).

One job per module: `feature_store` (the store), `records` (what is recorded per video, names on
disk), `writer` (writing an entry), `entry` (reading one), `integrity` (manifests and checks),
`zarrio` (codecs, chunks and shards, the strict local store), `shards` (writing shards once, reading
them strictly), `sidecar` (locks, trash), `migrate` (older layouts).
"""

from vadctl.store.entry import Entry
from vadctl.store.feature_store import FeatureStore, Problem
from vadctl.store.layout import SCHEMA_VERSION
from vadctl.store.records import VideoRecord, check_split, check_video_id, video_key
from vadctl.store.writer import EntryWriter
from vadctl.store.zarrio import MissingChunkError

__all__ = [
    "SCHEMA_VERSION",
    "Entry",
    "EntryWriter",
    "FeatureStore",
    "MissingChunkError",
    "Problem",
    "VideoRecord",
    "check_split",
    "check_video_id",
    "video_key",
]
