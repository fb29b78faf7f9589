"""Scene-aware video anomaly detection: a Transformer autoencoder over 16-frame sequences of frame
embeddings, trained to reconstruct, optionally with a supervised contrastive loss over scene labels.

Embeddings: CLIP image embeddings (`clip`) when the store has them, else weight-free ones derived
from cached `frames` (pooled thumbnails plus pooled frame differences; see `frame_embeddings`),
or any frame-level feature named with `feature`. Each dimension is standardised with training
statistics.

Modes: `reconstruction` (the scene-agnostic baseline) and `contrastive` (reconstruction + λ·SupCon
over the time-averaged latent, scenes as labels, batches balanced over scenes). Scene labels come
from `vadctl extract --scene` (stored per video) or a `scene_map` file (CSV `video,scene` or a
JSON object); the contrastive mode needs at least two scenes among the training videos.

Score: a frame's mean squared reconstruction error (standardised units), averaged over every
sequence that contains it (sequences start at every `score_stride`-th frame; a video shorter than
a sequence is padded by repeating its last frame, and only real frames are scored).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vadctl.backbones.torch_compat import device
from vadctl.backbones.torch_compat import device as pick_device
from vadctl.common.specs import FeatureSpec
from vadctl.errors import FeatureError, UsageError
from vadctl.models.base import Capabilities, has_feature, pick_feature
from vadctl.models.frame_embeddings import embed
from vadctl.models.neural import NeuralModel, load_module_arrays, module_arrays
from vadctl.models.registry import register
from vadctl.models.scores import VideoScores, temporal_smooth
from vadctl.store import FeatureStore

MODES = ("reconstruction", "contrastive")
PREFERRED = ("clip", "frames")


def read_scene_map(path: str | Path) -> dict[str, str]:
    """video id → scene, from a CSV with columns video,scene or a JSON object."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"scene_map {path}: no such file")
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("expected an object {video: scene}")
            return {str(k): str(v) for k, v in data.items()}
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        if not rows or not {"video", "scene"} <= set(rows[0]):
            raise ValueError("expected CSV columns video,scene")
        return {row["video"]: row["scene"] for row in rows}
    except (ValueError, json.JSONDecodeError, csv.Error) as error:
        raise UsageError(f"scene_map {path}: {error}") from None


def windows(n_frames: int, length: int, stride: int) -> np.ndarray:
    """Start frames of the sequences covering a video (the last one ends at its last frame)."""
    if n_frames <= length:
        return np.zeros(1, np.int64)
    starts = np.arange(0, n_frames - length + 1, stride)
    if starts[-1] != n_frames - length:
        starts = np.append(starts, n_frames - length)
    return starts


def gather(vectors: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """(len(starts), length, d) sequences; frames past the end repeat the last frame."""
    index = np.minimum(starts[:, None] + np.arange(length)[None, :], len(vectors) - 1)
    return vectors[index]


@register
class SceneAware(NeuralModel):
    """Scene-aware Transformer autoencoder (see module docstring)."""

    name = "sceneaware"
    summary = "Scene-aware Transformer AE over 16-frame embedding sequences; reconstruction (+ SupCon on scenes)"
    needs = "a frame-level feature: clip when extracted, else frames (pooled thumbnails + motion); scene labels"
    capabilities = Capabilities(trains_in_steps=True, onnx=True)

    def __init__(
        self,
        feature: str = "auto",
        mode: str = "contrastive",
        scene_map: str | None = None,
        seq_len: int = 16,
        thumb: int = 16,
        motion: bool = True,
        d_model: int = 128,
        latent_dim: int = 32,
        heads: int = 4,
        layers: int = 2,
        dropout: float = 0.1,
        contrastive_weight: float = 1.0,
        temperature: float = 0.1,
        batch_size: int = 32,
        lr: float = 5e-4,
        epochs: float = 20.0,
        steps: int | None = None,
        score_stride: int = 1,
        smoothing_sigma: float = 0.0,
        eval_batch_size: int = 256,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.feature = feature
        self.mode = mode
        self.scene_map = scene_map
        self.seq_len = seq_len
        self.thumb = thumb
        self.motion = motion
        self.d_model = d_model
        self.latent_dim = latent_dim
        self.heads = heads
        self.layers = layers
        self.dropout = dropout
        self.contrastive_weight = contrastive_weight
        self.temperature = temperature
        self.batch_size = batch_size
        self.lr = lr
        self.epochs = epochs
        self.steps = steps
        self.score_stride = score_stride
        self.smoothing_sigma = smoothing_sigma
        self.eval_batch_size = eval_batch_size
        self.device = device
        self.random_state = random_state

    # ----- features ---------------------------------------------------------------------------
    def select_features(self, store: FeatureStore, split: str) -> dict[str, FeatureSpec]:
        if self.feature == "auto":
            name = next((n for n in PREFERRED if has_feature(store, split, n)), None)
            if name is None:
                raise FeatureError(
                    f"sceneaware needs a frame-level feature and split {split!r} of {store.path} has neither "
                    "clip nor frames; run `vadctl extract … --features frames`"
                )
        else:
            name = self.feature
        spec = pick_feature(store, split, name, "frame-level", self.name)
        if spec.axis != "frame":
            raise FeatureError(f"sceneaware needs a frame-level feature; {spec.key} is clip-level")
        self.features_ = {"frames": spec}
        return self.features_

    def _vectors(self, store: FeatureStore, split: str, video_id: str) -> np.ndarray:
        record = store.video(split, video_id)
        if record is None:
            raise FeatureError(f"split {split!r} of {store.path} has no video {video_id!r}")
        return embed(store.entry(record, self.features_["frames"]), self.thumb, self.motion)

    def _scenes(self, store: FeatureStore, split: str, videos: Sequence[str]) -> list[str | None]:
        mapping = read_scene_map(self.scene_map) if self.scene_map else {}
        scenes = []
        for video_id in videos:
            record = store.video(split, video_id)
            scenes.append(mapping.get(video_id, record.scene if record else None))
        return scenes

    # ----- fit --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"sceneaware: mode={self.mode!r}: use {' or '.join(MODES)}")
        for name in ("seq_len", "thumb", "d_model", "latent_dim", "heads", "layers", "batch_size", "score_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"sceneaware: {name}={value!r} must be a positive integer")
        if self.d_model % self.heads:
            raise UsageError(f"sceneaware: d_model={self.d_model} must be divisible by heads={self.heads}")
        if not 0 <= self.dropout < 1:
            raise UsageError(f"sceneaware: dropout={self.dropout} must be in [0, 1)")
        if not self.temperature > 0:
            raise UsageError(f"sceneaware: temperature={self.temperature} must be positive")
        if self.steps is None and not self.epochs > 0:
            raise UsageError(f"sceneaware: epochs={self.epochs} must be positive (or give steps)")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise UsageError(f"sceneaware: steps={self.steps!r} must be a positive integer")

    def _groups(self, scenes: list[str | None], videos: Sequence[str]) -> list[str] | None:
        """Scene of every training video, or None when sampling ignores scenes."""
        missing = [v for v, s in zip(videos, scenes, strict=True) if s is None]
        if self.mode == "contrastive":
            if missing:
                shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
                raise UsageError(
                    f"sceneaware: contrastive mode needs a scene for every training video; {len(missing)} have none "
                    f"({shown}): extract with --scene, or pass -p scene_map=FILE (CSV video,scene)"
                )
            if len(set(scenes)) < 2:
                raise UsageError(
                    f"sceneaware: contrastive mode needs at least two scenes among the training videos "
                    f"(they all are {scenes[0]!r}); use -p mode=reconstruction"
                )
        return None if missing else [str(s) for s in scenes]

    def fit(self, store: FeatureStore, split: str, videos: Sequence[str]) -> SceneAware:
        import torch

        from vadctl.models.nets.losses import supervised_contrastive_loss
        from vadctl.models.nets.transformer_ae import SequenceAutoencoder
        from vadctl.models.training import Run, step_seed, train

        self._check_params()
        device = pick_device(self.device)
        scenes = self._groups(self._scenes(store, split, videos), videos)
        vectors = [self._vectors(store, split, v) for v in videos]
        stacked = np.concatenate(vectors)
        self.mean_ = stacked.mean(axis=0).astype(np.float32)
        std = stacked.std(axis=0)
        self.scale_ = np.maximum(std, 0.1 * float(np.median(std)) + 1e-6).astype(np.float32)
        standard = [(v - self.mean_) / self.scale_ for v in vectors]
        # every training sequence: (video, start), grouped by scene for balanced batches
        starts = [windows(len(v), self.seq_len, 1) for v in standard]
        samples = np.array([(i, s) for i, st in enumerate(starts) for s in st], np.int64)
        labels_of = sorted(set(scenes)) if scenes else [""]
        sample_scene = np.array([labels_of.index(scenes[i]) if scenes else 0 for i, _ in samples])
        by_scene = [np.flatnonzero(sample_scene == k) for k in range(len(labels_of))]
        per_scene = max(self.batch_size // len(labels_of), 2 if self.mode == "contrastive" else 1)
        total = self.steps or max(1, math.ceil(self.epochs * len(samples) / (per_scene * len(labels_of))))

        torch.manual_seed(self.random_state)
        net = SequenceAutoencoder(
            stacked.shape[1], self.seq_len, self.d_model, self.latent_dim, self.heads, self.layers, self.dropout
        ).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr)

        def step(i: int) -> dict[str, float]:
            torch.manual_seed(step_seed(self.random_state, i))
            rng = np.random.default_rng(step_seed(self.random_state, i, stream=1))
            chosen = np.concatenate([rng.choice(group, per_scene) for group in by_scene])
            x = np.stack([gather(standard[v], np.array([s]), self.seq_len)[0] for v, s in samples[chosen]])
            x = torch.from_numpy(x).to(device)
            z = net.encode(x)
            recon = torch.mean((net.decode(z) - x) ** 2)
            losses = {"recon": recon.item()}
            loss = recon
            if self.mode == "contrastive":
                labels = torch.from_numpy(sample_scene[chosen]).to(device)
                contrast = supervised_contrastive_loss(z.mean(dim=1), labels, self.temperature)
                loss = recon + self.contrastive_weight * contrast
                losses["supcon"] = contrast.item()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return {"loss": loss.item(), **losses}

        identity = self.run_identity({r: s.key for r, s in self.features_.items()}, videos)
        identity["scenes"] = scenes
        run = Run("sceneaware", total, identity, {"autoencoder": net}, {"autoencoder": optimizer}, step)
        summary = train(run, self.training_options())
        self.history_ = summary.history
        self.train_seconds_ = summary.seconds
        self.steps_ = summary.steps
        self.scenes_ = labels_of if scenes else []
        self.net_ = net.eval()
        return self

    # ----- scoring ----------------------------------------------------------------------------
    def scoring_net(self):
        return self.net_

    def example_input(self, batch: int = 2) -> np.ndarray:
        rng = np.random.default_rng(0)
        return rng.standard_normal((batch, self.seq_len, len(self.mean_))).astype(np.float32)

    def frame_errors(self, vectors: np.ndarray) -> np.ndarray:
        """Per-frame reconstruction error of one video's (n, d) raw vectors."""
        standard = (vectors - self.mean_) / self.scale_
        n = len(standard)
        starts = windows(n, self.seq_len, self.score_stride)
        total, count = np.zeros(n), np.zeros(n)
        for begin in range(0, len(starts), self.eval_batch_size):
            chunk = starts[begin : begin + self.eval_batch_size]
            x = gather(standard, chunk, self.seq_len)
            errors = ((self.forward(x) - x) ** 2).mean(axis=2)  # (b, seq_len)
            for start, error in zip(chunk, errors, strict=True):
                stop = min(start + self.seq_len, n)
                total[start:stop] += error[: stop - start]
                count[start:stop] += 1
        return total / np.maximum(count, 1)

    def score(self, store: FeatureStore, split: str, videos: Sequence[str]) -> Iterator[VideoScores]:
        self._check_fitted()
        for video_id in videos:
            vectors = self._vectors(store, split, video_id)
            if vectors.shape[1] != len(self.mean_):
                size, expected = vectors.shape[1], len(self.mean_)
                raise FeatureError(f"video {video_id}: embeddings of size {size}, the model was fitted on {expected}")
            yield VideoScores(video_id, temporal_smooth(self.frame_errors(vectors), self.smoothing_sigma))

    # ----- persistence ------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = module_arrays("autoencoder", self.net_) | {"mean": self.mean_, "scale": self.scale_}
        meta = {
            "scenes": self.scenes_,
            "steps": self.steps_,
            "train_seconds": round(self.train_seconds_, 3),
            "history": self.history_,
        }
        return arrays, meta

    def load_state(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        from vadctl.models.nets.transformer_ae import SequenceAutoencoder

        self.mean_ = np.asarray(arrays["mean"], np.float32)
        self.scale_ = np.asarray(arrays["scale"], np.float32)
        net = SequenceAutoencoder(
            len(self.mean_), self.seq_len, self.d_model, self.latent_dim, self.heads, self.layers, self.dropout
        )
        load_module_arrays("autoencoder", net, arrays)
        self.net_ = net.to(device("cpu" if self.device == "cpu" else "auto"))
        self.scenes_ = list(meta["scenes"])
        self.steps_ = int(meta["steps"])
        self.train_seconds_ = float(meta["train_seconds"])
        self.history_ = list(meta.get("history", []))
