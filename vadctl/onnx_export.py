"""ONNX export of a fitted neural model's scoring network, a parity check, and an onnxruntime backend.

The exported graph is the network that scoring evaluates (FFP's generator, the scene-aware
autoencoder), with a dynamic batch axis; everything around it (resizing, PSNR, error maps,
calibration) stays in vadctl and runs the same for either backend. The ONNX file records the
SHA-256 of the weights it was exported from, so scoring refuses an ONNX file that belongs to
another model file. Export uses torch's TorchScript-based exporter (the dynamo exporter needs
onnxscript, which is not a dependency).
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadctl import __version__
from vadctl.errors import ModelFileError, UsageError
from vadctl.models.base import VadModel
from vadctl.models.neural import NeuralModel
from vadctl.models.registry import names_with

OPSET = 17
DIGEST_KEY = "vadctl_weights_sha256"


@dataclass
class ExportReport:
    path: Path
    max_abs_diff: float
    parity_inputs: int
    output_scale: float  # max |output| over the parity inputs, to read the difference against
    seconds: float


def _require(model: VadModel) -> NeuralModel:
    """The model, if it declares an exportable scoring network."""
    if not model.capabilities.onnx:
        raise UsageError(
            f"model {model.name} has no network to export to ONNX (ONNX export: {', '.join(names_with('onnx'))})"
        )
    return model  # type: ignore[return-value]


def _onnxruntime():
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise UsageError("ONNX needs onnx and onnxruntime: pip install 'vadctl[onnx]'") from None
    return onnx, onnxruntime


def default_onnx_path(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".onnx")


def export_onnx(model: VadModel, path: Path, parity_batch: int = 4) -> ExportReport:
    """Write the scoring network to `path` (atomically) and compare onnxruntime with torch on it."""
    import torch

    from vadctl import checks

    parity_batch = checks.whole(parity_batch, "--parity-batch")
    path = checks.output_file(path, "--onnx")
    model = _require(model)
    onnx, _ = _onnxruntime()
    started = time.perf_counter()
    net = model.scoring_net().cpu().eval()
    example = torch.from_numpy(model.example_input(2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            torch.onnx.export(
                net,
                (example,),
                tmp,
                dynamo=False,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                opset_version=OPSET,
            )
        proto = onnx.load(tmp)
        for key, value in {
            "vadctl_model": model.name,
            "vadctl_version": __version__,
            DIGEST_KEY: model.weights_digest(),
        }.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    inputs = model.example_input(parity_batch)
    reference = model.forward(inputs)
    backend = OnnxBackend(path, model)
    got = backend(inputs)
    diff = float(np.abs(got - reference).max())
    return ExportReport(path, diff, parity_batch, float(np.abs(reference).max()), time.perf_counter() - started)


class OnnxBackend:
    """The scoring network as an onnxruntime session (CPU), checked to belong to `model`."""

    def __init__(self, path: Path, model: VadModel, threads: int | None = None):
        model = _require(model)
        _, onnxruntime = _onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise UsageError(f"{path}: no such ONNX file (write it with `vadctl export --model … --onnx {path}`)")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:
            raise ModelFileError(f"{path}: not a readable ONNX model ({str(error).splitlines()[0][:200]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("vadctl_model") != model.name or meta.get(DIGEST_KEY) != model.weights_digest():
            raise ModelFileError(
                f"{path}: exported from another model file (model {meta.get('vadctl_model', '?')}); "
                "export this model again with `vadctl export`"
            )
        self.path = path
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
