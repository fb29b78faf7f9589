"""What the torch models share: training options, weights as arrays, and a swappable scoring backend.

torch is imported inside methods only, so `vadctl --help`, `vadctl models` and the non-neural
models never pay its import time.

Neural models do not cross-fit: `fit_model` fits them on part of the training videos and
scores the held-out rest for the μ+3σ frame threshold; before that it calls `calibrate_heldout`
on the same held-out videos, where a model sets thresholds of its own (FFP: the per-pixel error
threshold of its localization maps).

The network that scoring runs (`scoring_net`: FFP's generator, the scene-aware autoencoder) can
be exported to ONNX (`vadctl.scoring.onnx`); `use_backend` swaps its forward pass for an
onnxruntime session, so the same scoring code runs either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vadctl.models.base import VadModel

if TYPE_CHECKING:
    import torch

    from vadctl.models.training import TrainOptions

Forward = Callable[[np.ndarray], np.ndarray]
RUN_LENGTH_PARAMS = ("epochs", "steps", "device", "eval_batch_size")  # may change when resuming


class NeuralModel(VadModel):
    """Base class of torch models (see module docstring)."""

    device: str
    random_state: int

    # ----- set by the caller before fit / score ------------------------------------------------
    def set_training(self, options: TrainOptions) -> None:
        """Checkpoint folder, resume flag and progress callback for the next `fit`."""
        self._training = options

    def training_options(self) -> TrainOptions:
        from vadctl.models.training import TrainOptions

        if getattr(self, "_training", None) is None:
            self._training = TrainOptions()
        return self._training

    def use_backend(self, forward: Forward | None) -> None:
        """Run the scoring network through `forward` (an onnxruntime session) instead of torch."""
        self._backend = forward

    # ----- for subclasses ---------------------------------------------------------------------
    def scoring_net(self) -> torch.nn.Module:
        """The fitted network that scoring evaluates (what ONNX export writes out)."""
        raise NotImplementedError

    def example_input(self, batch: int = 2) -> np.ndarray:
        """A valid input of the scoring network (for export and parity checks)."""
        raise NotImplementedError

    # networks with several inputs or outputs (or more dynamic axes) override these three
    def example_inputs(self, batch: int = 2, variant: int = 0) -> dict[str, np.ndarray]:
        """Named valid inputs of the scoring network; `variant` > 0 gives other sizes on the dynamic
        axes, so the parity check also tests that they are dynamic."""
        return {"input": self.example_input(batch)}

    def onnx_outputs(self) -> list[str]:
        return ["output"]

    def onnx_dynamic_axes(self) -> dict[str, dict[int, str]]:
        return {"input": {0: "batch"}, "output": {0: "batch"}}

    def run_network(self, inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The scoring network on named float32 inputs, by torch or by the backend set with
        `use_backend`; one array per output of `onnx_outputs`."""
        backend = getattr(self, "_backend", None)
        if backend is not None:
            return [np.asarray(v) for v in backend.run(inputs)]
        import torch

        net = self.scoring_net()
        device = next(net.parameters()).device
        tensors = [torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)).to(device) for v in inputs.values()]
        with torch.inference_mode():
            result = net(*tensors)
        result = result if isinstance(result, tuple | list) else (result,)
        return [r.cpu().numpy() for r in result]

    def run_identity(self, features: Mapping[str, Any], videos: Sequence[str]) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: all but the run-length parameters."""
        params = {k: v for k, v in self.get_params().items() if k not in RUN_LENGTH_PARAMS}
        return {"model": self.name, "params": params, "features": dict(features), "videos": list(videos)}

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The scoring network on a float32 batch, by torch or by the backend set with `use_backend`."""
        backend = getattr(self, "_backend", None)
        if backend is not None:
            return np.asarray(backend(np.ascontiguousarray(batch, dtype=np.float32)))
        import torch

        net = self.scoring_net()
        device = next(net.parameters()).device
        with torch.inference_mode():
            return net(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(device)).cpu().numpy()

    def weights_digest(self) -> str:
        """SHA-256 of the scoring network's weights: ties an exported ONNX file to its model file."""
        digest = hashlib.sha256()
        for name, value in sorted(self.scoring_net().state_dict().items()):
            array = np.ascontiguousarray(value.detach().cpu().numpy())
            digest.update(f"{name}|{array.dtype.str}|{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def module_arrays(prefix: str, module: torch.nn.Module) -> dict[str, np.ndarray]:
    """A module's weights and buffers as numpy arrays (what model files store)."""
    return {f"{prefix}.{k}": np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in module.state_dict().items()}


def load_module_arrays(prefix: str, module: torch.nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Load what `module_arrays` wrote; a missing, extra or misshapen tensor is a ValueError."""
    import torch

    mine = {k.removeprefix(f"{prefix}."): v for k, v in arrays.items() if k.startswith(f"{prefix}.")}
    expected = module.state_dict()
    for name, value in mine.items():  # load_state_dict would cast silently; a file must hold what was saved
        want = expected.get(name)
        if want is not None and _numpy_dtype(want.dtype) not in (None, np.asarray(value).dtype):
            raise ValueError(f"{prefix}.{name} has dtype {np.asarray(value).dtype}, the network's is {want.dtype}")
    try:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in mine.items()}, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{prefix} weights do not fit: {str(error).splitlines()[0][:300]}") from None
    module.eval()


def _numpy_dtype(dtype) -> np.dtype | None:
    """numpy's name for a torch dtype (None for those numpy lacks, e.g. bfloat16)."""
    try:
        return np.dtype(str(dtype).removeprefix("torch."))
    except TypeError:
        return None
