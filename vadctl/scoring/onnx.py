"""ONNX export of a fitted neural model's scoring network, a parity check, and an onnxruntime backend.

The exported graph is the network that scoring evaluates (FFP's generator, the scene-aware
autoencoder, the PLOVAD-based network with its detection, class and heatmap outputs), with the
dynamic axes the model declares (batch; snippets and classes for PLOVAD); everything around it
(resizing, PSNR, error maps, attribute scores, calibration) stays in vadctl and runs the same for
either backend. The ONNX file records the SHA-256 of the weights it was exported from, so scoring
refuses an ONNX file that belongs to another model file. Export uses torch's TorchScript-based
exporter (the dynamo exporter needs onnxscript, which is not a dependency).
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
from vadctl.common import checks
from vadctl.errors import ModelFileError, UsageError
from vadctl.models.base import VadModel
from vadctl.models.neural import NeuralModel
from vadctl.models.registry import names_with

OPSET = 17
DIGEST_KEY = "vadctl_weights_sha256"
PARITY_TOLERANCE = 1e-4  # max abs difference, relative to the outputs' scale (at least 1)


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
    """Write the scoring network to `path` (atomically) and compare onnxruntime with torch on it; a file
    whose outputs differ (beyond float rounding) is refused and not written."""
    import torch

    parity_batch = checks.whole(parity_batch, "--parity-batch")
    path = checks.output_file(path, "--onnx")
    model = _require(model)
    onnx, _ = _onnxruntime()
    started = time.perf_counter()
    net = model.scoring_net().cpu().eval()
    examples = model.example_inputs(2)
    example = tuple(torch.from_numpy(value) for value in examples.values())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            torch.onnx.export(
                net,
                example,
                tmp,
                dynamo=False,
                input_names=list(examples),
                output_names=model.onnx_outputs(),
                dynamic_axes=model.onnx_dynamic_axes(),
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
        parity = require_parity(model, Path(tmp), parity_batch)  # a file that does not reproduce torch is not kept
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ExportReport(path, parity.max_abs_diff, parity.inputs, parity.output_scale, time.perf_counter() - started)


@dataclass
class Parity:
    """onnxruntime against torch on the same inputs."""

    max_abs_diff: float
    inputs: int
    output_scale: float  # max |torch output|

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= PARITY_TOLERANCE * max(self.output_scale, 1.0)


def check_parity(model: VadModel, path: Path, n_inputs: int = 4) -> Parity:
    """Run the ONNX file with onnxruntime and the model's network with torch on the same inputs,
    of other sizes on the dynamic axes than the export traced.

    The torch side runs the network itself (never a backend set with `use_backend`), so the check
    always compares the two runtimes.
    """
    model = _require(model)
    inputs = model.example_inputs(n_inputs, variant=1)
    previous = getattr(model, "_backend", None)
    model.use_backend(None)
    try:
        reference = model.run_network(inputs)
    finally:
        model.use_backend(previous)
    got = OnnxBackend(path, model).run(inputs)
    scale = max(float(np.abs(r).max()) for r in reference)
    if len(got) != len(reference) or any(g.shape != r.shape for g, r in zip(got, reference, strict=False)):
        return Parity(float("inf"), n_inputs, scale)
    diff = max(float(np.abs(g - r).max()) for g, r in zip(got, reference, strict=True))
    return Parity(diff, n_inputs, scale)


def require_parity(model: VadModel, path: Path, n_inputs: int = 4) -> Parity:
    """`check_parity`, refusing an ONNX file whose outputs are not the model's."""
    parity = check_parity(model, path, n_inputs)
    if not parity.ok:
        raise ModelFileError(
            f"{path}: onnxruntime's outputs differ from the model's (max abs diff {parity.max_abs_diff:.3g} on "
            f"outputs up to {parity.output_scale:.3g}); export the model again with `vadctl export`"
        )
    return parity


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
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_name = self.input_names[0]

    def run(self, inputs) -> list[np.ndarray]:
        """Every output for named inputs (inputs the graph does not take are left out)."""
        feed = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items() if k in self.input_names}
        return self.session.run(None, feed)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
