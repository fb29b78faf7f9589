"""What the store records about a video, and how ids and splits become names on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from vadctl.common.checks import check_split, check_video_id  # noqa: F401  (part of the store's API)
from vadctl.common.specs import FeatureSpec, Fingerprint

MAX_KEY_BYTES = 160  # an escaped id longer than this gets a bounded name; the full id stays in the record
CLIPS = "clips"


def legacy_key(video_id: str) -> str:
    """How schema-1 stores (vadctl 0.1) named a video's folder: '~' unescaped, no length bound."""
    key = quote(check_video_id(video_id), safe="")
    return "%5F" + key[1:] if key.startswith("__") else key


def video_key(video_id: str) -> str:
    """A video id as one node name: '/', '%' and '~' escaped, so distinct ids never collide; ids
    whose escaped form is long get a bounded name (a readable prefix + '~' + a hash of the id)."""
    check_video_id(video_id)
    key = quote(video_id, safe="").replace("~", "%7E")
    if key.startswith("__"):  # Zarr reserves names starting with '__'
        key = "%5F" + key[1:]
    if len(key.encode()) > MAX_KEY_BYTES:
        digest = hashlib.sha256(video_id.encode()).hexdigest()[:20]
        prefix = key[:100].rsplit("%", 1)[0] if "%" in key[90:100] else key[:100]
        key = f"{prefix}~{digest}"
    return key


@dataclass
class VideoRecord:
    """A video's facts as the store holds them, and which feature entries are committed.

    `features` maps an entry key (`name@hash`) to its summary: the spec, row counts, the group that
    holds its arrays (`group`), what its files must be (`files`: array → [count, bytes]) and the
    digest of its manifest. `clips` names the array holding the clip table.

    `status`: "ok"; "truncated" (the file holds fewer frames than its container declares and the
    frames it holds were kept, on request: `error` says what is missing); or "failed" (`error`
    says why). A failure is `failure` "permanent" (the file cannot be decoded, is not a video, is
    truncated) or "transient" (a full disk, an I/O error, a lost worker or node: later runs try
    again), after `attempts` tries in a row. Records written before failures had a kind read as
    permanent.
    """

    split: str
    video_id: str
    source: str
    fingerprint: Fingerprint | None
    status: str = "ok"  # "ok", "truncated" (kept on request) or "failed"
    error: str | None = None
    failure: str | None = None  # a failed video's kind: "permanent" or "transient"
    attempts: int = 0  # failed attempts in a row (transient failures are retried up to a bound)
    n_frames: int = 0
    fps: float = 0.0
    height: int = 0
    width: int = 0
    scene: str | None = None
    clip_spec: dict | None = None
    features: dict[str, dict] = field(default_factory=dict)
    updated_at: str = ""
    clips: str = CLIPS
    clips_files: dict | None = None  # the clip table's manifest ('clips/file' → [size, hash])
    # sha256 of the source's whole content, and when it was taken: "extract" (as the entries were
    # computed) or "verify" (the first `store verify --sources`, later: it vouches only from then on)
    source_sha256: str | None = None
    source_sha256_from: str | None = None
    source_changed: str | None = None  # why the next extract redoes the whole video (verify --sources)
    # what decoded the video at its last extraction: "decord" or "pyav" (None: a folder of images, or
    # a record written before vadctl had a choice, when decord decoded every file)
    decoder: str | None = None

    @property
    def key(self) -> str:
        return video_key(self.video_id)

    @property
    def usable(self) -> bool:
        """Its committed features may be read (fit, score): ok, or truncated and kept."""
        return self.status in ("ok", "truncated")

    @property
    def failure_kind(self) -> str | None:
        """ "permanent" or "transient" for a failed video (older records: permanent), else None."""
        if self.status != "failed":
            return None
        return self.failure if self.failure in ("permanent", "transient") else "permanent"

    def has(self, spec: FeatureSpec) -> bool:
        return spec.key in self.features

    def group_of(self, key: str) -> str:
        """The node holding an entry's arrays (older stores: the entry key itself)."""
        return str(self.features[key].get("group", key))

    def nodes(self) -> set[str]:
        """Every child node this record refers to: what is current, the rest is leftovers."""
        return {self.clips} | {self.group_of(key) for key in self.features}

    def to_attrs(self) -> dict:
        data = {k: v for k, v in self.__dict__.items() if k != "fingerprint"}
        data["fingerprint"] = self.fingerprint.to_dict() if self.fingerprint else None
        return data

    @classmethod
    def from_attrs(cls, data: Mapping[str, Any]) -> VideoRecord:
        data = dict(data)
        fp = data.pop("fingerprint", None)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(fingerprint=Fingerprint.from_dict(fp) if fp else None, **known)
