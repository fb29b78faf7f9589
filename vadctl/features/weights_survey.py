"""Which weight file every featurizer needs, and whether this machine has it (`vadctl weights`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from vadctl.backbones.weights import WeightResolver
from vadctl.errors import VadctlError
from vadctl.features.deep import UsesWeights
from vadctl.features.registry import FEATURIZERS, featurizer_class

# Every configuration that needs weights by default or through a backend parameter.
VARIANTS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("clip", {}),
    ("clip_regions", {}),
    ("x3d", {}),
    ("pose", {}),
    ("flow", {"method": "raft"}),
    ("flow", {"method": "raft_small"}),
    ("regions", {"detector": "maskrcnn_v2"}),
    ("regions", {"detector": "maskrcnn"}),
    ("regions", {"detector": "yolox"}),
    ("regions", {"detector": "yolov8"}),
    ("appearance", {}),
    ("appearance_regions", {}),
    ("appearance", {"backbone": "resnet18"}),
    ("appearance", {"backbone": "resnet50"}),
)


@dataclass
class WeightStatus:
    feature: str
    params: dict[str, Any]
    key: str | None  # --weights KEY=PATH
    expected: str  # documented file name, "bundled" or "none"
    status: str  # "found", "missing", "bundled", "no weights", "unusable"
    path: str | None = None
    origin: str | None = None
    sha256: str | None = None
    problem: str | None = None

    @property
    def label(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.feature} ({shown})" if shown else self.feature

    def to_dict(self) -> dict:
        return asdict(self)


def survey(
    resolver: WeightResolver,
    wanted: Sequence[tuple[str, Mapping[str, Any]]] | None = None,
    verify: bool = True,
) -> list[WeightStatus]:
    """The weight status of each (feature, params); all featurizers and weighted variants by default.

    With `verify`, found files are also checked to hold the model's tensors (needs the extra).
    """
    if wanted is None:
        weighted = {name for name, params in VARIANTS if not params}
        wanted = [*VARIANTS, *[(name, {}) for name in sorted(FEATURIZERS) if name not in weighted]]
    return [_status(name, dict(params), resolver, verify) for name, params in wanted]


def _status(name: str, params: dict[str, Any], resolver: WeightResolver, verify: bool) -> WeightStatus:
    try:
        featurizer = featurizer_class(name)(**params)
    except (VadctlError, TypeError) as error:
        return WeightStatus(name, params, None, "?", "unusable", problem=str(error))
    if not isinstance(featurizer, UsesWeights) or not featurizer.needs_weights():
        return WeightStatus(name, params, None, "none", "no weights")
    featurizer.use_weights(resolver)
    wf = featurizer.weight_file()
    if wf is None:
        if featurizer.extra_modules:  # bundled with its library (pose)
            row = WeightStatus(name, params, None, f"bundled with the '{featurizer.extra}' extra", "bundled")
            try:
                featurizer.check()
                row.sha256 = featurizer.weights_identity().rsplit(":", 1)[-1]
            except VadctlError as error:
                row.status, row.problem = "unusable", str(error)
            return row
        return WeightStatus(name, params, None, "none", "no weights")
    row = WeightStatus(name, params, wf.key, wf.names[0], "missing")
    try:
        found = resolver.find(wf)
    except VadctlError as error:
        row.problem = str(error)
        return row
    if found is None:
        return row
    row.status, row.path, row.origin, row.sha256 = "found", str(found.path), found.origin, found.sha256[:16]
    if verify:
        try:
            featurizer.check()
        except VadctlError as error:
            row.status, row.problem = "unusable", str(error)
    return row
