"""What runs a fitted model's network when scoring (torch, or onnxruntime from an exported file
checked for parity first), and naming other classes for models with an open vocabulary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vadctl.errors import UsageError
from vadctl.models.files import LoadedModel
from vadctl.models.registry import names_with
from vadctl.scoring.onnx import OnnxBackend, require_parity

BACKENDS = ("torch", "onnx")


def use_backend(loaded: LoadedModel, backend: str, onnx_path: Path | None) -> None:
    """Run a neural model's network with onnxruntime from `onnx_path` when backend is "onnx"."""
    if backend not in BACKENDS:
        raise UsageError(f"backend {backend!r}: use {' or '.join(BACKENDS)}")
    if backend == "onnx":
        if onnx_path is None:
            raise UsageError("the onnx backend needs the exported ONNX file (vadctl export)")
        session = OnnxBackend(onnx_path, loaded.model)
        require_parity(loaded.model, onnx_path, 2)  # an edited graph or weights is refused, not scored with
        loaded.model.use_backend(session)


def use_classes(loaded: LoadedModel, classes: Sequence[str] | None, weights: Mapping[str, Path] | None) -> None:
    """Name other classes for models with an open vocabulary (CLIP's text tower, its weights found
    as featurizers find them, or in `weights`)."""
    if classes is None:
        return
    if not loaded.model.capabilities.classes:
        named = ", ".join(names_with("classes"))
        raise UsageError(f"--classes: model {loaded.model.name} names no classes (models that do: {named})")
    loaded.model.set_classes(list(classes), weights)
