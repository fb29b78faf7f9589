"""Where every score row came from: provenance columns and Parquet key-value metadata.

A row carries the model file's sha256, the video's fingerprint, the run that wrote it and when, so
rows of an appended dataset can be told apart (a rescored video adds rows, it never replaces them)
and joined back to the model and the video they describe. The file's key-value metadata (`vadctl.*`)
holds what is the same for every row: vadctl version, store, split, feature entries, threshold rule.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from vadctl import __version__

if TYPE_CHECKING:  # annotations only: readers of results (vadctl review) need not import zarr
    from vadctl.store import VideoRecord

SCORED_AT = pl.Datetime("us", "UTC")
META_PREFIX = "vadctl."
# The provenance columns of every results row (frames, regions, events; `vadctl score` files and the
# results dataset alike), in order. A new one is one line here, named like the `Provenance`
# attribute it copies (video_fingerprint is the one taken per video).
PROVENANCE_SCHEMA = {
    "model_sha256": pl.String,
    "video_fingerprint": pl.String,
    "run_id": pl.String,
    "scored_at": SCORED_AT,
    "split": pl.String,
}


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC start time plus 6 random hex digits (20240501T020000Z-3fa2c1)."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def video_fingerprint(record: VideoRecord) -> str:
    """The content a video's entries were computed from: the sha256 of the whole source when it was
    taken at extraction (so a same-size edit that `vadctl store verify --sources` finds, once
    re-extracted, is scored again), else the fingerprint's hash of size and sampled blocks (videos
    extracted before vadctl recorded the full hash keep theirs). A touched but identical file keeps
    it, a re-encoded or replaced one does not."""
    if record.source_sha256 and record.source_sha256_from == "extract":
        return record.source_sha256
    return record.fingerprint.sample_sha256 if record.fingerprint is not None else ""


@dataclass(frozen=True)
class Provenance:
    """What is the same for every row one model writes in one run over one split."""

    run_id: str
    scored_at: datetime
    model: str  # the name results are filed under (a job's model name; the model kind otherwise)
    model_kind: str  # aivad, fuvas, ...
    model_sha256: str
    model_path: str
    store: str
    split: str
    features: Mapping[str, str]  # role → entry key the model reads
    threshold_rule: str
    threshold: float
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        loaded,
        model_path: Path,
        store_path: Path,
        split: str,
        *,
        rule: str | None = None,
        name: str | None = None,
        run_id: str | None = None,
        scored_at: datetime | None = None,
        model_sha256: str | None = None,
    ) -> Provenance:
        """Provenance of scoring `split` of a store with a loaded model file."""
        rule = rule or loaded.calibration.rule
        scored_at = scored_at or datetime.now(UTC)
        return cls(
            run_id=run_id or new_run_id(scored_at),
            scored_at=scored_at,
            model=name or loaded.model.name,
            model_kind=loaded.model.name,
            model_sha256=model_sha256 or file_sha256(model_path),
            model_path=str(Path(model_path).resolve()),
            store=str(Path(store_path).resolve()),
            split=split,
            features={role: spec.key for role, spec in sorted(loaded.features.items())},
            threshold_rule=rule,
            threshold=loaded.calibration.threshold(rule),
        )

    @property
    def entries(self) -> str:
        """The feature entries read, as one sortable string (part of what "already scored" means)."""
        return ",".join(sorted(self.features.values()))

    def metadata(self, kind: str, **extra: Any) -> dict[str, str]:
        """Parquet key-value metadata (`vadctl.*`; values are strings, JSON where structured)."""
        values = {
            "kind": kind,
            "version": __version__,
            "run_id": self.run_id,
            "scored_at": self.scored_at.isoformat(timespec="seconds"),
            "model": self.model,
            "model_kind": self.model_kind,
            "model_sha256": self.model_sha256,
            "model_path": self.model_path,
            "store": self.store,
            "split": self.split,
            "features": json.dumps(dict(self.features), sort_keys=True),
            "threshold_rule": self.threshold_rule,
            "threshold": repr(self.threshold),
            **self.extra,
            **extra,
        }
        return {META_PREFIX + k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in values.items()}

    def columns(self, video_ids: pl.Series, records: Mapping[str, VideoRecord]) -> list[pl.Series]:
        """The `PROVENANCE_SCHEMA` columns for rows of these videos."""
        n = len(video_ids)
        fingerprints = {v: video_fingerprint(records[v]) for v in video_ids.unique().to_list()}
        per_video = {"video_fingerprint": video_ids.replace_strict(fingerprints, return_dtype=pl.String)}
        return [
            per_video[name].alias(name)
            if name in per_video
            else pl.Series(name, [getattr(self, name)] * n, dtype=dtype)
            for name, dtype in PROVENANCE_SCHEMA.items()
        ]


def with_provenance_frames(
    frames: pl.DataFrame, prov: Provenance, records: Mapping[str, VideoRecord], *, model_column: bool = True
) -> pl.DataFrame:
    """Frame rows in the published column order: video, frame, time_s, score, score_norm,
    is_anomaly, threshold, [model,] model_sha256, video_fingerprint, run_id, scored_at, split,
    then model-specific columns. Inside the results dataset `model` comes from the partition."""
    fps = {v: float(records[v].fps or 0.0) for v in frames["video"].unique().to_list()}
    time_s = (frames["frame"].cast(pl.Float64) / frames["video"].replace_strict(fps, return_dtype=pl.Float64)).alias(
        "time_s"
    )
    base = ["video", "frame"]
    scored = ["score", "score_norm", "is_anomaly", "threshold"]
    extras = [c for c in frames.columns if c not in {*base, *scored, "model"}]
    columns = [frames[c] for c in base] + [time_s] + [frames[c] for c in scored]
    if model_column:
        columns.append(pl.Series("model", [prov.model] * len(frames), dtype=pl.String))
    columns += prov.columns(frames["video"], records)
    columns += [frames[c] for c in extras]
    return pl.DataFrame(columns)


def with_provenance_regions(
    regions: pl.DataFrame, prov: Provenance, records: Mapping[str, VideoRecord], *, model_column: bool = True
) -> pl.DataFrame:
    """Region rows (video, frame, x1, y1, x2, y2, score) plus the same provenance as frames."""
    columns = [regions[c] for c in regions.columns]
    if model_column:
        columns.append(pl.Series("model", [prov.model] * len(regions), dtype=pl.String))
    columns += prov.columns(regions["video"], records)
    return pl.DataFrame(columns)


def read_metadata(path: Path) -> dict[str, str]:
    """The `vadctl.*` key-value metadata of a Parquet file, prefix removed."""
    meta = pl.read_parquet_metadata(path)
    return {k.removeprefix(META_PREFIX): v for k, v in meta.items() if k.startswith(META_PREFIX)}
