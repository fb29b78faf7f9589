"""FFP: Future Frame Prediction (Liu et al., CVPR 2018) on cached `frames`.

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

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from vadctl.errors import FeatureError, UsageError
from vadctl.models.base import pick_feature
from vadctl.models.neural import NeuralModel, load_module_arrays, module_arrays
from vadctl.models.registry import register
from vadctl.results import RegionScores, VideoScores
from vadctl.scoring import temporal_smooth
from vadctl.store import FeatureSpec, FeatureStore


def to_unit(frames: np.ndarray) -> np.ndarray:
    """uint8 pixels → float32 in [-1, 1]."""
    return frames.astype(np.float32) / 127.5 - 1.0


def history_indices(targets: np.ndarray, history: int) -> np.ndarray:
    """(len(targets), history) frame indices before each target, clamped at frame 0."""
    return np.maximum(targets[:, None] - history + np.arange(history)[None, :], 0)


@register
class Ffp(NeuralModel):
    """Future Frame Prediction (see module docstring); parameters via `vadctl fit -p KEY=VALUE`."""

    name = "ffp"
    summary = "Future Frame Prediction: U-Net + PatchGAN on frames; PSNR score; prediction-error boxes"
    needs = "frames (gray or RGB; resized to `resolution` at fit time)"

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

    def _motion_loss(self, device):
        """FFP's L_op with RAFT from local weights, or None when no flow network is asked for."""
        self.flow_weights_sha256_: str | None = None
        if self.motion_flow is None:
            return None
        from pathlib import Path

        from vadctl.errors import WeightsError
        from vadctl.features import raft
        from vadctl.models.nets.motion import MotionLoss
        from vadctl.weights import WeightResolver

        explicit = {}
        if self.flow_weights:
            explicit[self.motion_flow] = Path(self.flow_weights).expanduser()
            if not explicit[self.motion_flow].is_file():
                raise WeightsError(f"ffp: flow_weights={self.flow_weights}: no such file")
        try:
            weights = WeightResolver(explicit=explicit).resolve(raft.weight_file(self.motion_flow))
            network = raft.load_network(self.motion_flow, weights)
        except WeightsError as error:
            hint = str(error).replace(f"pass --weights {self.motion_flow}=PATH", "pass -p flow_weights=PATH")
            raise WeightsError(f"ffp motion loss: {hint}") from None
        self.flow_weights_sha256_ = weights.sha256
        return MotionLoss(network.to(device), self.flow_iterations)

    def learning_rates(self) -> tuple[float, float]:
        """Published: gray 1e-4 / 1e-5 (generator / discriminator), colour 2e-4 / 2e-5."""
        gray = self.channels_ == 1
        return (
            self.lr_g if self.lr_g is not None else (1e-4 if gray else 2e-4),
            self.lr_d if self.lr_d is not None else (1e-5 if gray else 2e-5),
        )

    def fit(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Ffp:
        import torch

        from vadctl.models.nets import losses
        from vadctl.models.nets.patchgan import PatchDiscriminator
        from vadctl.models.nets.unet import UNet
        from vadctl.training import Run, epoch_batch, resolve_device, step_seed, train

        self._check_params()
        device = resolve_device(self.device)
        clips = [self._frames(store, split, v) for v in videos]
        samples = np.array([(i, t) for i, c in enumerate(clips) for t in range(self.history, len(c))], np.int64)
        if len(samples) == 0:
            raise UsageError(f"ffp: training videos need more than history={self.history} frames")
        channels = self.channels_
        torch.manual_seed(self.random_state)
        generator = UNet(self.history * channels, channels, self.base_channels)
        discriminator = PatchDiscriminator(channels, self.disc_channels)
        generator.apply(_init_weights)
        discriminator.apply(_init_weights)
        generator.to(device, memory_format=torch.channels_last)  # ~20-30% faster convolutions on CPU
        discriminator.to(device, memory_format=torch.channels_last)
        lr_g, lr_d = self.learning_rates()
        opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d)
        total = self.steps or max(1, math.ceil(self.epochs * len(samples) / self.batch_size))
        motion_loss = self._motion_loss(device)

        def batch(indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = [], []
            for video, t in samples[indices]:
                x.append(clips[video][t - self.history : t].reshape(-1, *clips[video].shape[2:]))
                y.append(clips[video][t])
            return (
                torch.from_numpy(to_unit(np.stack(z))).to(device, memory_format=torch.channels_last) for z in (x, y)
            )

        def step(i: int) -> dict[str, float]:
            torch.manual_seed(step_seed(self.random_state, i))
            inputs, target = batch(epoch_batch(self.random_state, i, len(samples), self.batch_size))
            pred = generator(inputs)
            l_int = losses.intensity_loss(pred, target)
            l_gd = losses.gradient_loss(pred, target)
            l_adv = losses.generator_adversarial_loss(discriminator(pred))
            loss_g = self.lambda_int * l_int + self.lambda_gd * l_gd + self.lambda_adv * l_adv
            extra = {}
            if motion_loss is not None:
                l_op = motion_loss(inputs[:, -channels:], pred, target)
                loss_g = loss_g + self.lambda_op * l_op
                extra["op"] = l_op.item()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            loss_d = losses.discriminator_loss(discriminator(target), discriminator(pred.detach()))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            losses_now = {"g": loss_g.item(), "int": l_int.item(), "gd": l_gd.item(), "adv": l_adv.item()}
            return {**losses_now, **extra, "d": loss_d.item()}

        identity = self.run_identity({r: s.key for r, s in self.features_.items()}, videos)
        if self.flow_weights_sha256_:  # the flow weights' content is what counts, not their path
            identity["params"].pop("flow_weights", None)
            identity["flow_weights_sha256"] = self.flow_weights_sha256_
        run = Run(
            "ffp",
            total,
            identity,
            {"generator": generator, "discriminator": discriminator},
            {"generator": opt_g, "discriminator": opt_d},
            step,
        )
        summary = train(run, self.training_options())
        self.history_ = summary.history
        self.train_seconds_ = summary.seconds
        self.steps_ = total
        self.generator_ = generator.eval()
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
        n = len(frames)
        targets = np.arange(min(self.history, n - 1), n)
        psnr = np.empty(len(targets))
        maps = np.empty((len(targets), self.resolution, self.resolution), np.float32)
        k = self.region_blur
        for start in range(0, len(targets), self.eval_batch_size):
            chunk = targets[start : start + self.eval_batch_size]
            inputs = frames[history_indices(chunk, self.history)]  # (b, h, C, R, R)
            inputs = to_unit(inputs.reshape(len(chunk), -1, self.resolution, self.resolution))
            pred = self.forward(inputs)
            error = ((pred - to_unit(frames[chunk])) / 2) ** 2  # squared error on the [0, 1] scale
            mse = error.reshape(len(chunk), -1).mean(axis=1).astype(np.float64)
            psnr[start : start + len(chunk)] = 10 * np.log10(1 / np.maximum(mse, 1e-10))
            for j, pixel_map in enumerate(error.mean(axis=1)):
                maps[start + j] = cv2.blur(pixel_map, (k, k)) if k > 1 else pixel_map
        return targets, psnr, maps

    def calibrate_heldout(self, store: FeatureStore, split: str, videos: Sequence[str]) -> None:
        """Localization threshold from held-out normal videos: μ + `region_sigma`·σ of each frame's
        peak (blurred) pixel error. Peaks, not all pixels: every normal frame has some pixels far in
        the tail of the pixel distribution (edges of walkers), so a per-pixel μ+3σ boxes them all."""
        self._check_fitted()
        peaks = [self.predict(self._frames(store, split, v))[2].max(axis=(1, 2)) for v in videos]
        values = np.concatenate(peaks).astype(np.float64) if peaks else np.zeros(0)
        if len(values) < 2:
            return
        mean, std = float(values.mean()), float(values.std()) or 1e-12
        self.pixel_calibration_ = {
            "mean": mean,
            "std": std,
            "threshold": mean + self.region_sigma * std,
            "frames": len(values),
        }

    def score(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Iterator[VideoScores]:
        self._check_fitted()
        for video_id in videos:
            record = store.video(split, video_id)
            frames = self._frames(store, split, video_id)
            targets, psnr, maps = self.predict(frames)
            per_frame = np.empty(len(frames))
            per_frame[targets] = psnr
            per_frame[: targets[0]] = psnr[0]
            span = per_frame.max() - per_frame.min()
            minmax = 1 - (per_frame - per_frame.min()) / span if span > 0 else np.zeros(len(frames))
            scores = temporal_smooth(-per_frame, self.smoothing_sigma)
            extra = {"psnr": per_frame, "score_minmax": minmax}
            regions = self._regions(record, targets, maps) if self.pixel_calibration_ else None
            yield VideoScores(video_id, scores, regions, extra)

    def _regions(self, record, targets: np.ndarray, maps: np.ndarray) -> RegionScores:
        cal = self.pixel_calibration_
        size = self.resolution
        min_area = max(1, round(self.region_min_area * size * size))
        scale = np.array([record.width / size, record.height / size] * 2, np.float32)
        frames, boxes, values = [], [], []
        for frame, error in zip(targets, maps, strict=True):
            mask = (error > cal["threshold"]).astype(np.uint8)
            if not mask.any():
                continue
            count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            for label in range(1, count):
                x, y, w, h, area = stats[label]
                if area < min_area:
                    continue
                frames.append(int(frame))
                boxes.append(np.array([x, y, x + w, y + h], np.float32) * scale)
                values.append((float(error[labels == label].mean()) - cal["mean"]) / cal["std"])
        if not frames:
            return RegionScores.empty()
        return RegionScores(np.asarray(frames, np.int64), np.stack(boxes), np.asarray(values))

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
        from vadctl.training import resolve_device

        channels = int(meta["channels"])
        generator = UNet(self.history * channels, channels, self.base_channels)
        load_module_arrays("generator", generator, arrays)
        device = resolve_device("cpu" if self.device == "cpu" else "auto")
        self.generator_ = generator.to(device, memory_format=torch.channels_last)
        self.pixel_calibration_ = dict(meta["pixel_calibration"]) if meta.get("pixel_calibration") else None
        self.steps_ = int(meta["steps"])
        self.train_seconds_ = float(meta["train_seconds"])
        self.history_ = list(meta.get("history", []))
        self.flow_weights_sha256_ = meta.get("flow_weights_sha256")


def _init_weights(module) -> None:
    """Published initialisation: conv weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02)."""
    from torch import nn

    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
