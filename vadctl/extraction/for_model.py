"""What to extract from new videos for a fitted model: its feature entries, as extract jobs.

A model file records the entries it was fitted on and every upstream entry they were computed
from (name, version, parameters; `provenance.feature_entries`). An entry's parameters are the
featurizer's own plus what the extractor adds to its identity: the decode size (`decode`), the
clip table of clip-level entries (`clips`), upstream hashes (`upstream`) and the weights' sha256
(`weights`). Entries of one decode size and clip table are extracted in one run; the extractor's
specs are then compared with the recorded ones, so `infer` never scores features the model was
not fitted on (another featurizer version or other weights is a clear error, not a silent mix).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vadctl.common.specs import ClipSpec, DecodeSpec, FeatureSpec
from vadctl.errors import ModelFileError

IDENTITY_KEYS = ("decode", "clips", "upstream", "weights")  # added by the extractor, not featurizer params


@dataclass
class ExtractJob:
    """One extract run: features with their parameters, the decode size and the clip table."""

    decode: DecodeSpec
    clips: ClipSpec
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)  # feature name → recorded entry key

    @property
    def features(self) -> list[str]:
        return list(self.params)

    @property
    def resize(self) -> str | None:
        if self.decode.width is None:
            return None
        return f"{self.decode.width}x{self.decode.height}" if self.decode.height else str(self.decode.width)


def recorded_entries(header: Mapping[str, Any], path: str) -> list[FeatureSpec]:
    """The entries a model file records (older files: only those it reads directly)."""
    entries = header.get("provenance", {}).get("feature_entries")
    if entries is None:
        entries = list(header.get("features", {}).values())
    try:
        return [FeatureSpec.from_dict(entry) for entry in entries]
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: feature entries unreadable: {error}") from None


def extract_jobs(header: Mapping[str, Any], path: str) -> list[ExtractJob]:
    """The extract runs that reproduce a model's entries on new videos."""
    specs = recorded_entries(header, path)
    by_name = {spec.name: spec for spec in specs}
    jobs: dict[str, ExtractJob] = {}
    clip_table = next((ClipSpec(**s.params["clips"]) for s in specs if "clips" in s.params), ClipSpec())
    for spec in specs:
        for name, digest in spec.params.get("upstream", {}).items():
            if name not in by_name:
                raise ModelFileError(
                    f"{path}: records {spec.key} but not the {name}@{digest} entry it was computed from "
                    "(a model file of an older vadctl); fit it again to infer on new videos"
                )
        decode = DecodeSpec(**spec.params.get("decode", {}))
        clips = ClipSpec(**spec.params["clips"]) if "clips" in spec.params else clip_table
        job = jobs.setdefault(repr((decode, clips)), ExtractJob(decode, clips))
        job.params[spec.name] = {k: v for k, v in spec.params.items() if k not in IDENTITY_KEYS}
        job.expected[spec.name] = spec.key
    return list(jobs.values())
