"""FFP training: the U-Net generator against a PatchGAN discriminator, with the published losses.

Generator loss = λ_int·L_int + λ_gd·L_gd + λ_adv·L_adv (published weights 1, 1, 0.05), plus
λ_op·L_op (published 2) when a flow network is given: FFP's motion loss compares flows of the
predicted and the real frame; here a frozen torchvision RAFT from local weights stands in for the
published FlowNet2-SD (`vadctl.backbones.raft`, the module the flow featurizer uses too). Adam with the
published learning rates. Every step's randomness derives from (seed, step), so a resumed run
replays an uninterrupted one exactly (`vadctl.models.training`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vadctl.backbones import raft
from vadctl.backbones.weights import WeightResolver
from vadctl.errors import UsageError, WeightsError
from vadctl.models.ffp.scoring import to_unit

# Imported inside the functions that use them: torch and the networks (importing this module stays cheap).

if TYPE_CHECKING:
    import torch

    from vadctl.models.neural import NeuralModel
    from vadctl.models.training import TrainOptions


@dataclass
class Trained:
    generator: torch.nn.Module
    history: list[dict[str, float]]
    seconds: float
    steps: int
    flow_weights_sha256: str | None


def motion_loss(model: NeuralModel, device) -> tuple[Any, str | None]:
    """(FFP's L_op with RAFT from local weights, the weights' sha256), or (None, None) when no flow
    network is asked for."""
    if model.motion_flow is None:
        return None, None
    from vadctl.models.nets.motion import MotionLoss

    explicit = {}
    if model.flow_weights:
        explicit[model.motion_flow] = Path(model.flow_weights).expanduser()
        if not explicit[model.motion_flow].is_file():
            raise WeightsError(f"ffp: flow_weights={model.flow_weights}: no such file")
    try:
        weights = WeightResolver(explicit=explicit).resolve(raft.weight_file(model.motion_flow))
        network = raft.load_network(model.motion_flow, weights)
    except WeightsError as error:
        hint = str(error).replace(f"pass --weights {model.motion_flow}=PATH", "pass -p flow_weights=PATH")
        raise WeightsError(f"ffp motion loss: {hint}") from None
    return MotionLoss(network.to(device), model.flow_iterations), weights.sha256


def init_weights(module) -> None:
    """Published initialisation: conv weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02)."""
    from torch import nn

    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def train_generator(
    model: NeuralModel, clips: list[np.ndarray], identity: dict[str, Any], options: TrainOptions, device
) -> Trained:
    """Train on every (video, t ≥ history) sample of `clips` ((n, C, R, R) uint8 frames each)."""
    import torch

    from vadctl.models.nets import losses
    from vadctl.models.nets.patchgan import PatchDiscriminator
    from vadctl.models.nets.unet import UNet
    from vadctl.models.training import Run, epoch_batch, step_seed, train

    history = model.history
    samples = np.array([(i, t) for i, c in enumerate(clips) for t in range(history, len(c))], np.int64)
    if len(samples) == 0:
        raise UsageError(f"ffp: training videos need more than history={history} frames")
    channels = clips[0].shape[1]
    torch.manual_seed(model.random_state)
    generator = UNet(history * channels, channels, model.base_channels)
    discriminator = PatchDiscriminator(channels, model.disc_channels)
    generator.apply(init_weights)
    discriminator.apply(init_weights)
    generator.to(device, memory_format=torch.channels_last)  # ~20-30% faster convolutions on CPU
    discriminator.to(device, memory_format=torch.channels_last)
    lr_g, lr_d = model.learning_rates()
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr_d)
    total = model.steps or max(1, math.ceil(model.epochs * len(samples) / model.batch_size))
    op_loss, flow_sha = motion_loss(model, device)

    def batch(indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = [], []
        for video, t in samples[indices]:
            x.append(clips[video][t - history : t].reshape(-1, *clips[video].shape[2:]))
            y.append(clips[video][t])
        return (torch.from_numpy(to_unit(np.stack(z))).to(device, memory_format=torch.channels_last) for z in (x, y))

    def step(i: int) -> dict[str, float]:
        torch.manual_seed(step_seed(model.random_state, i))
        inputs, target = batch(epoch_batch(model.random_state, i, len(samples), model.batch_size))
        pred = generator(inputs)
        l_int = losses.intensity_loss(pred, target)
        l_gd = losses.gradient_loss(pred, target)
        l_adv = losses.generator_adversarial_loss(discriminator(pred))
        loss_g = model.lambda_int * l_int + model.lambda_gd * l_gd + model.lambda_adv * l_adv
        extra = {}
        if op_loss is not None:
            l_op = op_loss(inputs[:, -channels:], pred, target)
            loss_g = loss_g + model.lambda_op * l_op
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

    if flow_sha:  # the flow weights' content is what counts, not their path
        identity["params"].pop("flow_weights", None)
        identity["flow_weights_sha256"] = flow_sha
    run = Run(
        "ffp",
        total,
        identity,
        {"generator": generator, "discriminator": discriminator},
        {"generator": opt_g, "discriminator": opt_d},
        step,
    )
    summary = train(run, options)
    return Trained(generator.eval(), summary.history, summary.seconds, summary.steps, flow_sha)
