"""Model files: safetensors (no pickle, safe to open when untrusted) plus a JSON header.

A file holds the model's parameters and fitted arrays, the exact feature entries it was fitted on
(name, parameters, hash), the calibration of its threshold, where it was fitted, and the vadctl
version. A SHA-256 digest over header and tensors is stored beside them, so a file that was cut
short or edited by hand is refused instead of scoring garbage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from vadctl import __version__
from vadctl.atomic import write_atomic
from vadctl.errors import ModelFileError, VadctlError
from vadctl.models.base import VadModel
from vadctl.models.registry import build
from vadctl.scoring import Calibration
from vadctl.specs import FeatureSpec, canonical_json

FORMAT = "vadctl-model"
FORMAT_VERSION = 1
HEADER_KEY = "vadctl"
DIGEST_KEY = "vadctl_digest"


@dataclass
class LoadedModel:
    model: VadModel
    calibration: Calibration
    header: dict[str, Any]

    @property
    def features(self) -> dict[str, FeatureSpec]:
        return self.model.features_


def _digest(header_json: str, tensors: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256(header_json.encode())
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def save_model(
    path: Path, model: VadModel, calibration: Calibration, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write atomically (temp file + rename) so a killed run never leaves half a model at `path`."""
    arrays, meta = model.state()
    tensors = {f"state.{k}": np.ascontiguousarray(v) for k, v in arrays.items()}
    tensors["calibration.quantiles"] = np.asarray(calibration.quantiles, dtype=np.float64)
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vadctl_version": __version__,
        "model": model.name,
        "params": model.get_params(),
        "features": {role: spec.to_dict() for role, spec in model.features_.items()},
        "state": meta,
        "calibration": calibration.to_meta(),
        "provenance": {"created_at": datetime.now(UTC).isoformat(timespec="seconds"), **(provenance or {})},
    }
    header_json = canonical_json(header)
    metadata = {HEADER_KEY: header_json, DIGEST_KEY: _digest(header_json, tensors)}
    return write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header alone (for `vadctl models --file`), checked like `load_model` checks it."""
    return _open(Path(path))[0]


def _open(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder; give the model file")
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as error:
        raise ModelFileError(f"{path}: not a vadctl model file (unreadable safetensors: {error})") from None
    header_json = metadata.get(HEADER_KEY)
    if header_json is None:
        raise ModelFileError(f"{path}: a safetensors file, but not a vadctl model (no vadctl header)")
    if metadata.get(DIGEST_KEY) != _digest(header_json, tensors):
        raise ModelFileError(f"{path}: checksum mismatch: the file was modified or is corrupt; fit it again")
    try:
        header = json.loads(header_json)
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: model header is not valid JSON") from None
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a vadctl model file (format {header.get('format')!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format {header.get('format_version')} (vadctl {header.get('vadctl_version')}); "
            f"this vadctl {__version__} reads format {FORMAT_VERSION}"
        )
    return header, tensors


def load_model(path: Path) -> LoadedModel:
    """Read, verify and rebuild a fitted model."""
    path = Path(path)
    header, tensors = _open(path)
    try:
        model = build(header["model"], header["params"])
    except VadctlError as error:
        raise ModelFileError(f"{path}: {error}") from None
    model.features_ = {role: FeatureSpec.from_dict(spec) for role, spec in header["features"].items()}
    state = {name.removeprefix("state."): array for name, array in tensors.items() if name.startswith("state.")}
    try:
        model.load_state(state, header["state"])
    except (KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: model state does not fit model {header['model']}: {error}") from None
    calibration = Calibration.from_meta(header["calibration"], tensors["calibration.quantiles"])
    return LoadedModel(model, calibration, header)
