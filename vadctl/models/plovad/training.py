"""Training the PLOVAD-based network from video-level labels: the joint loss and the run.

Each step takes a batch balanced between normal and anomalous videos (padded to the longest).
With `match_activity`, each anomalous video in a batch is paired with a normal one of similar
activity (share of busy cells: how crowded the recording is), drawn with a Gaussian kernel over
the activity difference (bandwidth half the spread of the normal videos' activities): if the
anomalous training videos come from busier recordings than the normal ones (Ped2's weak split),
unmatched batches teach "busy = anomalous"; matched batches make busyness useless to the loss.
(An option: on Ped2's weak split it did not help; see benchmarks/RESULTS.md.)

- Detection (multiple-instance learning): a video's logit is the mean of its top-k snippet
  logits (k = `topk_fraction` of its snippets, at least 1), against the video's label.
- Localization (the seed's joint detection + localization loss; the weak labels supervise the
  map as MIL over cells): every cell of every snippet of a normal video is normal; in an anomalous
  video, the hottest cell of each of its top-k snippets is anomalous (somewhere in the snippets
  the detection head blames, something is). Normal videos pin the whole map down, anomalous ones
  lift one cell per blamed snippet: the map learns *where*, from labels that say only *whether*.
- Classes: the mean class logits of an anomalous video's top-k snippets, against its class.
- Smoothness: neighbouring snippets' probabilities stay close (anomalies last).

Every step's randomness derives from (seed, step), so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from vadctl.backbones.torch_compat import host_threads
from vadctl.errors import UsageError

# Imported inside the functions that use them: torch and the network (importing this module stays cheap).

if TYPE_CHECKING:
    import torch

    from vadctl.models.training import TrainOptions


@dataclass
class TrainVideo:
    cells: np.ndarray  # (T, C, R, W) float32 network inputs
    appearance: np.ndarray | None  # (T, D) float32
    label: int
    class_index: int  # -1: no class
    activity: float = 0.0  # share of busy cells (for activity-matched negatives)


@dataclass
class Trained:
    net: Any
    prototypes: Any  # learnt (K, E) class vectors, or None in open-vocabulary mode
    history: list[dict[str, float]]
    seconds: float
    steps: int


def collate(videos: list[TrainVideo], device) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest video; `pad` marks the padding."""
    import torch

    length = max(len(v.cells) for v in videos)
    cells = np.zeros((len(videos), length, *videos[0].cells.shape[1:]), np.float32)
    pad = np.ones((len(videos), length), bool)
    appearance = None
    if videos[0].appearance is not None:
        appearance = np.zeros((len(videos), length, videos[0].appearance.shape[1]), np.float32)
    for i, video in enumerate(videos):
        n = len(video.cells)
        cells[i, :n] = video.cells
        pad[i, :n] = False
        if appearance is not None:
            appearance[i, :n] = video.appearance
    batch = {
        "cells": torch.from_numpy(cells).to(device),
        "pad": torch.from_numpy(pad).to(device),
        "labels": torch.tensor([float(v.label) for v in videos], device=device),
        "classes": torch.tensor([v.class_index for v in videos], device=device),
    }
    if appearance is not None:
        batch["appearance"] = torch.from_numpy(appearance).to(device)
    return batch


def top_snippets(detection: torch.Tensor, pad: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices (B, kmax), selected (B, kmax) bool): each video's top-k snippets by detection logit."""
    import torch

    lengths = (~pad).sum(dim=1)
    k = torch.clamp(torch.ceil(fraction * lengths.float()).long(), min=1)
    kmax = int(k.max())
    _, index = detection.masked_fill(pad, -1e4).topk(kmax, dim=1)
    selected = torch.arange(kmax, device=detection.device)[None, :] < k[:, None]
    return index, selected


def joint_loss(model, outputs, batch: dict[str, torch.Tensor], with_classes: bool) -> dict[str, torch.Tensor]:
    """The loss terms of one batch (see module docstring)."""
    import torch
    from torch.nn import functional as F

    detection, class_logits, heat = outputs
    pad, labels = batch["pad"], batch["labels"]
    valid = (~pad).float()
    index, selected = top_snippets(detection, pad, model.topk_fraction)
    chosen = selected.float()
    top = detection.gather(1, index)
    video_logit = (top * chosen).sum(1) / chosen.sum(1)
    terms = {"mil": F.binary_cross_entropy_with_logits(video_logit, labels)}

    anomalous = labels > 0.5
    cells = heat.flatten(2)  # (B, T, R·W)
    normal_cells = F.binary_cross_entropy_with_logits(cells, torch.zeros_like(cells), reduction="none").mean(-1)
    normal_term = ((normal_cells * valid).sum(1) / valid.sum(1))[~anomalous]
    hottest = cells.max(dim=-1).values.gather(1, index)
    lifted = F.binary_cross_entropy_with_logits(hottest, torch.ones_like(hottest), reduction="none")
    anomalous_term = ((lifted * chosen).sum(1) / chosen.sum(1))[anomalous]
    terms["loc"] = torch.cat([normal_term, anomalous_term]).mean()

    if with_classes:
        named = anomalous & (batch["classes"] >= 0)
        if bool(named.any()):
            picked = class_logits.gather(1, index[:, :, None].expand(-1, -1, class_logits.shape[-1]))
            video_classes = (picked * chosen[:, :, None]).sum(1) / chosen.sum(1, keepdim=True)
            terms["cls"] = F.cross_entropy(video_classes[named], batch["classes"][named])
        else:
            terms["cls"] = detection.new_zeros(())
    probability = torch.sigmoid(detection)
    pairs = valid[:, 1:] * valid[:, :-1]
    terms["smooth"] = (((probability[:, 1:] - probability[:, :-1]) ** 2) * pairs).sum() / pairs.sum().clamp(min=1)
    return terms


def matched_negatives(videos: list[TrainVideo], normal: list[int], anomalous: list[int]) -> dict[int, np.ndarray]:
    """For each anomalous video, sampling probabilities over the normal videos: a Gaussian kernel on
    the activity difference, bandwidth half the spread of normal activities."""
    busy = np.array([videos[i].activity for i in normal])
    bandwidth = max(0.5 * float(busy.std()), 1e-3)
    out = {}
    for p in anomalous:
        weights = np.exp(-0.5 * ((busy - videos[p].activity) / bandwidth) ** 2) + 1e-12
        out[p] = weights / weights.sum()
    return out


def train_network(
    model,
    videos: list[TrainVideo],
    prototypes: np.ndarray | None,
    n_classes: int,
    identity: dict[str, Any],
    options: TrainOptions,
    device,
) -> Trained:
    """Train the network on `videos`; `prototypes` fixes class vectors (CLIP text), else they are learnt."""
    import torch
    from torch import nn

    from vadctl.models.training import Run, step_seed, train

    normal = [i for i, v in enumerate(videos) if v.label == 0]
    anomalous = [i for i, v in enumerate(videos) if v.label == 1]
    if not normal or not anomalous:
        raise UsageError("plovad: training needs both normal and anomalous videos (after holding out validation)")
    appearance_dim = 0 if videos[0].appearance is None else videos[0].appearance.shape[1]
    clip_classes = prototypes is not None
    class_dim = prototypes.shape[1] if clip_classes else model.class_dim
    torch.manual_seed(model.random_state)
    net = model.build_net(videos[0].cells.shape[1], appearance_dim, class_dim, clip_classes).to(device)
    learnt = None
    if clip_classes:
        fixed = torch.from_numpy(np.asarray(prototypes, np.float32)).to(device)
    else:
        learnt = nn.Parameter(torch.randn(max(n_classes, 1), class_dim, device=device) * 0.1)
    holder = nn.ParameterDict({"prototypes": learnt}) if learnt is not None else nn.ParameterDict()
    optimizer = torch.optim.AdamW(
        [*net.parameters(), *holder.parameters()], lr=model.learning_rate, weight_decay=model.weight_decay
    )
    half = max(1, model.batch_size // 2)
    matching = matched_negatives(videos, normal, anomalous) if model.match_activity else None
    total = model.steps or max(1, math.ceil(model.epochs * len(videos) / (2 * half)))
    weights = {"mil": 1.0, "loc": model.localization_weight, "cls": model.class_weight, "smooth": model.smooth_weight}

    def step(i: int) -> dict[str, float]:
        torch.manual_seed(step_seed(model.random_state, i))
        rng = np.random.default_rng(step_seed(model.random_state, i, stream=1))
        if matching is None:
            negatives = rng.choice(normal, half)
            positives = rng.choice(anomalous, half)
        else:
            positives = rng.choice(anomalous, half)
            negatives = [rng.choice(normal, p=matching[p]) for p in positives]
        chosen = [*negatives, *positives]
        batch = collate([videos[j] for j in chosen], device)
        classes = fixed if clip_classes else holder["prototypes"]
        outputs = net(batch["cells"], classes, batch.get("appearance"), batch["pad"])
        terms = joint_loss(model, outputs, batch, n_classes > 0)
        loss = sum(weights[name] * value for name, value in terms.items())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.item()), **{name: float(value.item()) for name, value in terms.items()}}

    run = Run("plovad", total, identity, {"net": net, "prototypes": holder}, {"net": optimizer}, step)
    with host_threads(device):  # a small network: one CPU thread (two spin-wait on a busy machine: 9× slower)
        summary = train(run, options)
    net.eval()
    learnt_out = holder["prototypes"].detach().cpu().numpy() if learnt is not None else None
    return Trained(net, learnt_out, summary.history, summary.seconds, total)
