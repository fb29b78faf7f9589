"""RAFT optical flow (torchvision's model definition, local weights), shared by the `flow` featurizer
(`flow.method=raft`) and FFP's motion loss: one network module both sides import.

AI-VAD's FlowExtractor uses torchvision's RAFT-large. Frames are scaled to [-1, 1] as torchvision's
optical-flow preset does, padded (edge pixels repeated) to a multiple of 8 and at least 128 pixels
per side, which RAFT's correlation pyramid needs; the flow is cropped back, so it is in pixels of
the decoded frame with no resampling. RAFT uses no compiled torchvision ops, so it runs on CPU torch
here (slowly: it is built for GPUs). Pairs are batched; 12 refinement iterations (torchvision's
default) are part of the method.
"""

from __future__ import annotations

import numpy as np

from vadctl.backbones.batching import Pipeline, chunks
from vadctl.backbones.torch_compat import device as pick_device
from vadctl.backbones.torch_compat import host_threads, import_extra
from vadctl.backbones.weights import ResolvedWeights, WeightFile, check_fits, load_tensors, tensor_shapes
from vadctl.errors import WeightsError

# torch is imported inside the functions that use it: importing this module stays cheap (CLI start-up).

# flow.method → (torchvision builder, published weights file AI-VAD/torchvision use by default)
VARIANTS = {
    "raft": ("raft_large", "raft_large_C_T_SKHT_V2-ff5fadd5.pth"),
    "raft_small": ("raft_small", "raft_small_C_T_V2-01064c6d.pth"),
}
ITERATIONS = 12
MIN_SIDE = 128


def weight_file(method: str) -> WeightFile:
    builder, official = VARIANTS[method]
    return WeightFile.torchvision(method, "flow", builder, official, f"torchvision {builder}")


def build(method: str, device: str = "cpu"):
    import torch

    torchvision = import_extra("torchvision", "flow.method=" + method, "raft")
    builder = getattr(torchvision.models.optical_flow, VARIANTS[method][0])
    with torch.device(device):
        return builder(weights=None)


def check_weights(method: str, weights: ResolvedWeights) -> None:
    expected = {k: tuple(v.shape) for k, v in build(method, "meta").state_dict().items()}
    found = tensor_shapes(weights.path, "flow")
    check_fits("flow", weights.path, f"torchvision {VARIANTS[method][0]}", expected, found)


def load_network(method: str, weights: ResolvedWeights):
    """RAFT (CPU, float32) with the weights of a local file; a file that does not fit is a one-line error."""
    model = build(method, "cpu")
    state = load_tensors(weights.path, "flow")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise WeightsError(f"flow: {weights.path}: cannot load into RAFT ({method}): {first}") from None
    return model


def padding(height: int, width: int) -> tuple[int, int]:
    """Rows and columns to add (bottom, right) for RAFT's size constraints."""
    target_h = max(MIN_SIDE, -(-height // 8) * 8)
    target_w = max(MIN_SIDE, -(-width // 8) * 8)
    return target_h - height, target_w - width


class RaftEngine:
    """A loaded RAFT model that turns frame pairs into flow fields."""

    def __init__(self, method: str, weights: ResolvedWeights, device: str = "auto", batch_size: int = 4):
        import torch

        model = load_network(method, weights)
        self.device = pick_device(device)
        self.dtype = torch.float32  # RAFT's iterative refinement is not reliable in half precision
        self.model = model.to(self.device, self.dtype).eval()
        self.batch_size = batch_size
        self.pipeline = Pipeline(overlap=self.device.type == "cuda")
        self._torch = torch

    def _prepare(self, pairs: list[tuple[np.ndarray, np.ndarray]]):
        torch = self._torch
        first = np.stack([a for a, _ in pairs])
        second = np.stack([b for _, b in pairs])
        pad_h, pad_w = padding(*first.shape[1:3])

        def tensor(frames: np.ndarray):
            t = torch.from_numpy(frames).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
            t = t.div_(127.5).sub_(1.0)  # [0, 255] → [-1, 1]
            if pad_h or pad_w:
                t = torch.nn.functional.pad(t, (0, pad_w, 0, pad_h), mode="replicate")
            return t.to(self.dtype)

        with host_threads(self.device):
            return tensor(first), tensor(second), first.shape[1:3]

    def _run(self, prepared) -> np.ndarray:
        first, second, (height, width) = prepared
        with self._torch.inference_mode():
            flow = self.model(first, second, num_flow_updates=ITERATIONS)[-1]
        return flow[:, :, :height, :width].permute(0, 2, 3, 1).float().cpu().numpy()

    def flows(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        """(n, H, W, 2) float32 flow in pixels from each pair's first RGB frame to its second."""
        out = self.pipeline.map(chunks(pairs, self.batch_size), self._prepare, self._run)
        return np.concatenate(out)
