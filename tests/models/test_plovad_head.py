"""plovad's attribute head and velocity-with-position attribute, checked against values computed by hand;
a model file written before the head existed keeps its network."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from model_files import read_parts, rewrite
from weak_stores import PLOVAD_PARAMS, weak_store

from vadctl import api
from vadctl.errors import UsageError
from vadctl.models.files import load_model
from vadctl.models.plovad import Plovad
from vadctl.models.plovad.attribute_net import AttributeNet
from vadctl.models.plovad.attributes import CellAttributes
from vadctl.models.plovad.snippets import Regions, VideoInputs


def softplus(x: float) -> float:
    return float(np.log1p(np.exp(x)))


def head_with(weights: list[float], bias: float) -> AttributeNet:
    net = AttributeNet(in_channels=3, attributes=2, appearance_dim=0, class_dim=4)
    with torch.no_grad():
        net.raw_weight.copy_(torch.tensor(weights))
        net.bias.fill_(bias)
    return net


def test_heat_is_the_weighted_sum_of_attributes_and_detection_the_hottest_cell():
    net = head_with([0.0, 1.0], -2.0)  # softplus: 0.6931, 1.3133
    cells = torch.zeros(1, 2, 3, 1, 2)  # (B, T, C, R, W): 2 attributes + 1 grid channel, 1×2 cells
    cells[0, 0, 0] = torch.tensor([[1.0, 0.0]])  # snippet 0: PCA error 1 in cell 0
    cells[0, 0, 1] = torch.tensor([[0.0, 1.0]])  # … velocity 1 in cell 1
    cells[0, 1, :2] = 0.5  # snippet 1: both attributes 0.5 everywhere
    cells[0, :, 2] = 100.0  # the grid: reaches the class head only
    detection, _, heat = net(cells, torch.eye(4)[:2])
    w1, w2 = softplus(0.0), softplus(1.0)
    expected_heat = [[[-2 + w1, -2 + w2]], [[-2 + 0.5 * (w1 + w2)] * 2]]
    np.testing.assert_allclose(heat[0].detach().numpy(), expected_heat, rtol=1e-6)
    np.testing.assert_allclose(detection[0].detach().numpy(), [-2 + w2, -2 + 0.5 * (w1 + w2)], rtol=1e-6)
    cells[0, :, 2] = -100.0
    again, _, _ = net(cells, torch.eye(4)[:2])
    torch.testing.assert_close(again, detection)  # the grid never moves detection


def test_a_more_unusual_cell_never_scores_lower_and_classes_never_move_detection():
    net = head_with([-3.0, 2.0], 0.5)
    cells = torch.randn(2, 5, 3, 2, 3)
    detection, class_logits, _ = net(cells, torch.randn(3, 4))
    raised = cells.clone()
    raised[:, :, :2] += torch.rand(2, 5, 2, 2, 3)  # every attribute up (or the same)
    higher, _, _ = net(raised, torch.randn(3, 4))
    assert bool((higher >= detection - 1e-6).all())
    class_logits.sum().backward()
    assert net.raw_weight.grad is None or float(net.raw_weight.grad.abs().sum()) == 0.0
    assert net.bias.grad is None or float(net.bias.grad.abs()) == 0.0
    assert float(net.classify.weight.grad.abs().sum()) > 0


def _video(velocity: list[float], y_centres: list[float]) -> VideoInputs:
    n = len(velocity)
    boxes = np.array([[0.1, y - 0.05, 0.2, y + 0.05] for y in y_centres], np.float32)
    regions = Regions(np.zeros(n, np.int64), boxes, np.asarray(velocity, np.float64)[:, None])
    return VideoInputs("v", 16, 64, 64, np.array([[0, 16]]), np.zeros((1, 1, 2, 2), np.float32), None, regions)


def test_velocity_with_position_puts_the_box_height_beside_speed():
    video = _video([3.0, 1.0], [0.25, 0.75])
    np.testing.assert_allclose(CellAttributes()._velocity(video), [[3.0], [1.0]])  # as stored
    np.testing.assert_allclose(CellAttributes(velocity_position="y")._velocity(video), [[3.0, 0.25], [1.0, 0.75]])
    with pytest.raises(UsageError, match="velocity_position"):
        CellAttributes(velocity_position="xy").fit([video, video])


def test_speed_normal_at_the_bottom_is_unusual_at_the_top_only_with_position():
    """Normal videos: fast (4 px/frame) near the camera (bottom), slow (1) far away (top). A fast box at
    the top is as normal as any by speed alone, and the least normal of all with the position."""
    rng = np.random.default_rng(0)
    normal = []
    for _ in range(4):
        near = rng.normal(4.0, 0.2, 50)
        far = rng.normal(1.0, 0.1, 50)
        normal.append(_video([*near, *far], [*rng.uniform(0.7, 0.9, 50), *rng.uniform(0.1, 0.3, 50)]))
    probe = _video([4.0, 4.0], [0.8, 0.2])  # fast near (normal), fast far (not)
    for position, unusual in (("none", False), ("y", True)):
        attributes = CellAttributes(velocity_position=position, n_folds=2)
        attributes.fit(normal)
        near, far = attributes.gmm_.score(attributes._velocity(probe))
        assert bool(far > near + 5) is unusual, (position, near, far)


def test_lr_defaults_follow_the_head_and_bad_heads_are_refused():
    assert Plovad().learning_rate == 3e-2 and Plovad(head="network").learning_rate == 1e-3
    assert Plovad(lr=0.5).learning_rate == 0.5
    for bad in ({"head": "mlp"}, {"lr": -1.0}):
        with pytest.raises(UsageError, match=next(iter(bad))):
            Plovad(**bad)._check_params()


def test_a_file_from_before_the_attribute_head_keeps_its_network(tmp_path_factory, tmp_path):
    info = weak_store(tmp_path_factory)
    params = {**PLOVAD_PARAMS, "head": "network", "steps": 3}
    made = api.fit(
        "plovad", info["store"], tmp_path / "then.safetensors", params, split="weak", video_labels=info["video_labels"]
    )
    header = json.loads(read_parts(made)[0]["vadctl"])
    for added in ("head", "velocity_position"):
        header["params"].pop(added)
    old = load_model(rewrite(made, tmp_path / "old.safetensors", header=header))
    assert old.model.head == "network" and type(old.model.net_).__name__ == "PlovadNet"
    assert old.model.velocity_position == "none"
    assert Plovad().head == "attributes"  # what a new fit means
