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
from vadctl.common.atomic import write_atomic
from vadctl.common.specs import FeatureSpec, canonical_json
from vadctl.errors import ModelFileError, VadctlError
from vadctl.models import signing
from vadctl.models.base import VadModel
from vadctl.models.calibration import QUANTILE_STEPS, Calibration, parse_rule
from vadctl.models.registry import build, model_class
from vadctl.models.state_checks import StateShapes, finite_number, non_finite

FORMAT = "vadctl-model"
HEADER_FIELDS = ("model", "params", "features", "state", "calibration")
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
    digest = _digest(header_json, tensors)
    metadata = {HEADER_KEY: header_json, DIGEST_KEY: digest}
    key = signing.model_key()
    if key is not None:
        metadata[signing.SIGNATURE_KEY] = signing.signature(key, digest)
    return write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header alone (for `vadctl models --file`), checked like `load_model` checks it."""
    return _open(Path(path))[0]


def peek_header(path: Path) -> dict[str, Any]:
    """The JSON header alone, without reading the tensors or checking the digest: enough to decide
    whether a file has work to do (a nightly run with nothing new never loads its models)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            header = json.loads((handle.metadata() or {})[HEADER_KEY])
    except (SafetensorError, OSError, ValueError, KeyError) as error:
        raise ModelFileError(f"{path}: not a vadctl model file ({type(error).__name__}: {error})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT or "features" not in header:
        raise ModelFileError(f"{path}: not a vadctl model file (no vadctl header)")
    return header


def _open(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, str]]:
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
    if not isinstance(metadata.get(DIGEST_KEY), str) or metadata[DIGEST_KEY] != _digest(header_json, tensors):
        raise ModelFileError(f"{path}: checksum mismatch: the file was modified or is corrupt; fit it again")
    try:
        header = json.loads(header_json)
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: model header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: not a vadctl model file (its header is not a JSON object)")
    if header.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not a vadctl model file (format {header.get('format')!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: model file format {header.get('format_version')} (vadctl {header.get('vadctl_version')}); "
            f"this vadctl {__version__} reads format {FORMAT_VERSION}"
        )
    return header, tensors, metadata


def load_model(path: Path) -> LoadedModel:
    """Read, verify and rebuild a fitted model: checksum, signature (when a key is configured),
    then every array and statistic against the model's parameters (one-line errors, no guessing)."""
    path = Path(path)
    header, tensors, metadata = _open(path)
    problem = signing.check(path, signing.model_key(), metadata[DIGEST_KEY], metadata.get(signing.SIGNATURE_KEY))
    if problem:
        raise ModelFileError(f"{path}: {problem}")
    bad = non_finite(tensors)
    if bad is not None:
        raise ModelFileError(f"{path}: array {bad} holds NaN or infinite values; fit the model again")
    missing = [key for key in HEADER_FIELDS if key not in header]
    if missing:
        raise ModelFileError(f"{path}: model header is incomplete or malformed (no {', '.join(missing)})")
    name = header.get("model")
    try:
        params = header["params"]
        if isinstance(params, dict):
            params = {**model_class(name).file_defaults, **params}
        model = build(name, params)
    except VadctlError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except (KeyError, TypeError, AttributeError) as error:
        raise ModelFileError(f"{path}: model header is incomplete or malformed ({error})") from None
    state = {key.removeprefix("state."): array for key, array in tensors.items() if key.startswith("state.")}
    try:
        model.features_ = {role: FeatureSpec.from_dict(spec) for role, spec in header["features"].items()}
        calibration = _calibration(header["calibration"], tensors.get("calibration.quantiles"))
        model.check_state(state, header["state"])
        model.load_state(state, header["state"])
    except VadctlError as error:
        raise ModelFileError(f"{path}: {error}") from None
    except Exception as error:  # whatever a file that passed its checksum can still get wrong
        raise ModelFileError(f"{path}: model state does not fit model {name} and its parameters: {error}") from None
    return LoadedModel(model, calibration, header)


def _calibration(meta: Mapping[str, Any], quantiles: np.ndarray | None) -> Calibration:
    """The threshold's statistics, checked: finite, σ > 0, quantiles in order (σ = 0 made every
    normalized score infinite)."""
    finite_number(meta.get("mean"), "calibration mean")
    finite_number(meta.get("std"), "calibration std", positive=True)
    if isinstance(meta.get("n_frames"), bool) or not isinstance(meta.get("n_frames"), int) or meta["n_frames"] < 1:
        raise ValueError(f"calibration n_frames {meta.get('n_frames')!r}: expected a whole number ≥ 1")
    StateShapes({"calibration.quantiles": quantiles} if quantiles is not None else {}).expect(
        "calibration.quantiles", (len(QUANTILE_STEPS),)
    )
    if (np.diff(quantiles) < 0).any():
        raise ValueError("calibration quantiles are not in increasing order")
    calibration = Calibration.from_meta(dict(meta), quantiles)
    parse_rule(calibration.rule)
    return calibration
