"""Model files as tests rewrite them: read a safetensors file's parts, recompute vadctl's digest (written
here, independently of the code under test), write a copy with a part replaced."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file


def read_parts(path: Path) -> tuple[dict, dict]:
    """(metadata, tensors) of a safetensors file, read with safetensors itself."""
    with safe_open(str(path), framework="numpy") as handle:
        return dict(handle.metadata() or {}), {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118


def digest(header_json: str, tensors: dict) -> str:
    """The model file digest, computed here: sha256 over the header, then every tensor by sorted
    name as 'name|dtype|shape' and its bytes."""
    h = hashlib.sha256(header_json.encode())
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def rewrite(source: Path, target: Path, header=None, tensors=None, metadata=None, sign: bool = True) -> Path:
    """A copy of a model file with header, tensors or metadata replaced; re-signed with a correct
    digest unless `sign` is False, so checks after the digest are reached."""
    meta, arrays = read_parts(source)
    if header is not None:
        meta["vadctl"] = header if isinstance(header, str) else json.dumps(header)
    if tensors is not None:
        arrays = tensors(arrays)
    if sign:
        meta["vadctl_digest"] = digest(meta["vadctl"], arrays)
    if metadata is not None:
        meta = metadata(meta)
    save_file(arrays, str(target), metadata=meta)
    return target
