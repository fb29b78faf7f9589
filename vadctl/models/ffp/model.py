"""FFP: Future Frame Prediction (Liu et al., CVPR 2018) on cached `frames`: the estimator.

A U-Net predicts frame t from frames t-4..t-1 (pixels in [-1, 1], resized to `resolution`²);
a PatchGAN discriminator judges predictions. Generator loss = λ_int·L_int + λ_gd·L_gd +
λ_adv·L_adv with the published weights (1, 1, 0.05); Adam with the published learning rates
(gray: 1e-4 generator, 1e-5 discriminator; RGB: 2e-4, 2e-5). The published motion loss compares
FlowNet2-SD flows of predicted and real frames; here `motion_flow=raft|raft_small` adds it
(λ_op = 2, published) with a frozen torchvision RAFT from local weights (`nets/motion.py`). Without
flow weights the loss is left out: appearance and adversarial losses alone constrain the prediction.

Score: PSNR between predicted and real frame. The model's frame score is −PSNR, which `fit`
calibrates on held-out normal training videos (μ+3σ), so one new video can be scored alone;
the published score, 1 − per-video min–max-normalised PSNR, is the extra column `score_minmax`
(it uses each test video's own range: see DESIGN.md on why that flatters any predictor), and raw
PSNR is the column `psnr`. The first 4 frames of a video have no full history: they take the
score of the first predicted frame.

Localization: the per-pixel squared prediction error, blurred, is compared with μ + `region_sigma`·σ
of the per-frame peaks of the same maps on held-out normal videos; connected components above it
(large enough) become boxes in source-video pixels, scored by their mean error in those σ units.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from vadctl.backbones.torch_compat import device
from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError, UsageError
from vadctl.models.base import Capabilities, pick_feature
from vadctl.models.ffp import scoring
from vadctl.models.neural import NeuralModel, load_module_arrays, module_arrays
from vadctl.models.registry import register
from vadctl.models.scores import VideoScores, temporal_smooth
from vadctl.store import FeatureStore

# torch and FFP's networks and training loop are imported inside the functions that use them (cheap import).


@register
class Ffp(NeuralModel):
    """Future Frame Prediction (see module docstring); parameters via `vadctl fit -p KEY=VALUE`."""

    name = "ffp"
    summary = "Future Frame Prediction: U-Net + PatchGAN on frames; PSNR score; prediction-error boxes"
    needs = "frames (gray or RGB; resized to `resolution` at fit time)"
    capabilities = Capabilities(trains_in_steps=True, onnx=True)

    def __init__(
        self,
        feature: str = "frames",
        resolution: int = 256,
        history: int = 4,
        base_channels: int = 64,
        disc_channels: int = 128,
        batch_size: int = 4,
        epochs: float = 10.0,
        steps: int | None = None,
        lr_g: float | None = None,
        lr_d: float | None = None,
        lambda_int: float = 1.0,
        lambda_gd: float = 1.0,
        lambda_adv: float = 0.05,
        motion_flow: str | None = None,
        flow_weights: str | None = None,
        lambda_op: float = 2.0,
        flow_iterations: int = 12,
        smoothing_sigma: float = 0.0,
        region_sigma: float = 3.0,
        region_blur: int = 3,
        region_min_area: float = 0.002,
        eval_batch_size: int = 16,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.feature = feature
        self.resolution = resolution
        self.history = history
        self.base_channels = base_channels
        self.disc_channels = disc_channels
        self.batch_size = batch_size
        self.epochs = epochs
        self.steps = steps
        self.lr_g = lr_g
        self.lr_d = lr_d
        self.lambda_int = lambda_int
        self.lambda_gd = lambda_gd
        self.lambda_adv = lambda_adv
        self.motion_flow = motion_flow
        self.flow_weights = flow_weights
        self.lambda_op = lambda_op
        self.flow_iterations = flow_iterations
        self.smoothing_sigma = smoothing_sigma
        self.region_sigma = region_sigma
        self.region_blur = region_blur
        self.region_min_area = region_min_area
        self.eval_batch_size = eval_batch_size
        self.device = device
        self.random_state = random_state

    # ----- features ---------------------------------------------------------------------------
    def select_features(self, store: FeatureStore, split: str) -> dict[str, FeatureSpec]:
        spec = pick_feature(store, split, self.feature, "frames", self.name)
        if spec.axis != "frame" or spec.name != "frames":
            raise FeatureError(f"ffp needs a frames feature (frame-level images); {spec.key} is not one")
        self.features_ = {"frames": spec}
        return self.features_

    @property
    def channels_(self) -> int:
        return 3 if self.features_["frames"].params.get("color") == "rgb" else 1

    def _frames(self, store: FeatureStore, split: str, video_id: str) -> np.ndarray:
        """(n, C, R, R) uint8 frames of a video at the model's resolution."""
        record = store.video(split, video_id)
        if record is None:
            raise FeatureError(f"split {split!r} of {store.path} has no video {video_id!r}")
        data = store.entry(record, self.features_["frames"])["data"]
        if data.ndim == 3:
            data = data[..., None]
        height, width = data.shape[1:3]
        size = self.resolution
        if size > min(height, width):
            key = self.features_["frames"].key
            raise FeatureError(
                f"ffp: resolution {size} exceeds the cached frames ({width}x{height}) of {key}; "
                "extract frames at least that large (-p frames.height=… -p frames.width=…)"
            )
        if (height, width) != (size, size):
            data = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in data])
            data = data.reshape(len(data), size, size, -1)
        return np.ascontiguousarray(data.transpose(0, 3, 1, 2))

    # ----- fit --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.resolution < 32 or self.resolution % 8:
            raise UsageError(f"ffp: resolution={self.resolution} must be a multiple of 8 and at least 32")
        positive = ("history", "base_channels", "disc_channels", "batch_size", "eval_batch_size")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"ffp: {name}={value!r} must be a positive integer")
        if self.steps is None and not self.epochs > 0:
            raise UsageError(f"ffp: epochs={self.epochs} must be positive (or give steps)")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise UsageError(f"ffp: steps={self.steps!r} must be a positive integer")
        if self.region_blur < 1 or self.region_blur % 2 == 0:
            raise UsageError(f"ffp: region_blur={self.region_blur} must be an odd number of pixels")
        if self.motion_flow not in (None, "raft", "raft_small"):
            raise UsageError(f"ffp: motion_flow={self.motion_flow!r}: use raft or raft_small (or leave it out)")
        if self.flow_weights is not None and self.motion_flow is None:
            raise UsageError("ffp: flow_weights given without motion_flow=raft|raft_small")
        if not isinstance(self.flow_iterations, int) or self.flow_iterations < 1:
            raise UsageError(f"ffp: flow_iterations={self.flow_iterations!r} must be a positive integer")

    def learning_rates(self) -> tuple[float, float]:
        """Published: gray 1e-4 / 1e-5 (generator / discriminator), colour 2e-4 / 2e-5."""
        gray = self.channels_ == 1
        return (
            self.lr_g if self.lr_g is not None else (1e-4 if gray else 2e-4),
            self.lr_d if self.lr_d is not None else (1e-5 if gray else 2e-5),
        )

    def fit(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Ffp:
        from vadctl.models.ffp.training import train_generator

        self._check_params()
        clips = [self._frames(store, split, v) for v in videos]
        identity = self.run_identity({r: s.key for r, s in self.features_.items()}, videos)
        trained = train_generator(self, clips, identity, self.training_options(), device(self.device))
        self.history_ = trained.history
        self.train_seconds_ = trained.seconds
        self.steps_ = trained.steps
        self.flow_weights_sha256_ = trained.flow_weights_sha256
        self.generator_ = trained.generator
        self.pixel_calibration_: dict[str, float] | None = None
        return self

    # ----- prediction -------------------------------------------------------------------------
    def scoring_net(self):
        return self.generator_

    def example_input(self, batch: int = 2) -> np.ndarray:
        rng = np.random.default_rng(0)
        shape = (batch, self.history * self.channels_, self.resolution, self.resolution)
        return rng.uniform(-1, 1, shape).astype(np.float32)

    def predict(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(predicted frame indices, their PSNR, their blurred squared-error maps) for one video."""
        return scoring.predict(self.forward, frames, self.history, self.eval_batch_size, self.region_blur)

    def calibrate_heldout(self, store: FeatureStore, split: str, videos: Sequence[str]) -> None:
        """Localization threshold from held-out normal videos (see `scoring.peak_calibration`)."""
        self._check_fitted()
        peaks = [self.predict(self._frames(store, split, v))[2].max(axis=(1, 2)) for v in videos]
        values = np.concatenate(peaks) if peaks else np.zeros(0)
        self.pixel_calibration_ = scoring.peak_calibration(values, self.region_sigma)

    def score(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Iterator[VideoScores]:
        self._check_fitted()
        for video_id in videos:
            record = store.video(split, video_id)
            frames = self._frames(store, split, video_id)
            targets, psnr, maps = self.predict(frames)
            per_frame = scoring.frame_psnr(len(frames), targets, psnr)
            scores = temporal_smooth(-per_frame, self.smoothing_sigma)
            extra = {"psnr": per_frame, "score_minmax": scoring.minmax_score(per_frame)}
            regions = None
            if self.pixel_calibration_:
                size = self.resolution
                scale = np.array([record.width / size, record.height / size] * 2, np.float32)
                regions = scoring.error_boxes(targets, maps, self.pixel_calibration_, self.region_min_area, scale)
            yield VideoScores(video_id, scores, regions, extra)

    # ----- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        meta = {
            "channels": self.channels_,
            "pixel_calibration": self.pixel_calibration_,
            "steps": self.steps_,
            "train_seconds": round(self.train_seconds_, 3),
            "history": self.history_,
            "flow_weights_sha256": self.flow_weights_sha256_,
        }
        return module_arrays("generator", self.generator_), meta

    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        import torch

        from vadctl.models.nets.unet import UNet

        channels = int(meta["channels"])
        generator = UNet(self.history * channels, channels, self.base_channels)
        load_module_arrays("generator", generator, arrays)
        where = device("cpu" if self.device == "cpu" else "auto")
        self.generator_ = generator.to(where, memory_format=torch.channels_last)
        self.pixel_calibration_ = dict(meta["pixel_calibration"]) if meta.get("pixel_calibration") else None
        self.steps_ = int(meta["steps"])
        self.train_seconds_ = float(meta["train_seconds"])
        self.history_ = list(meta.get("history", []))
        self.flow_weights_sha256_ = meta.get("flow_weights_sha256")
