"""What featurizers with model weights share: weight resolution, identity, availability checks.

A weighted featurizer's identity is its parameters plus the sha256 of its weights (never their
path), so moving a file keeps cached features and other weights make a new entry. Parameters that
change how it runs but not what it computes (`device`, `batch_size`, `runtime`) stay out of the identity.
Everything that can be checked without running the model is checked when the spec is computed
(before any video): the extra is installed, the weights are found and hold the model's tensors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from vadctl.features.base import Featurizer
from vadctl.store import FeatureSpec
from vadctl.torch_compat import extra_installed
from vadctl.video import ClipSpec, DecodeSpec
from vadctl.weights import ResolvedWeights, WeightFile, WeightResolver

EXECUTION_PARAMS = ("device", "batch_size", "runtime")


class UsesWeights:
    """Mixin: a featurizer that may need a weight file (which one may depend on its parameters)."""

    _resolver: WeightResolver | None = None
    _resolved: ResolvedWeights | None = None

    def weight_file(self) -> WeightFile | None:
        """The weight file these parameters need, or None."""
        return None

    def use_weights(self, resolver: WeightResolver) -> None:
        self._resolver = resolver
        self._resolved = None

    def resolved_weights(self) -> ResolvedWeights:
        """The weight file, found (raises `WeightsError` naming what was looked for where)."""
        if self._resolved is None:
            wf = self.weight_file()
            if wf is None:
                raise RuntimeError(f"{type(self).__name__} needs no weights with these parameters")
            self._resolved = (self._resolver or WeightResolver()).resolve(wf)
        return self._resolved


class WeightedFeaturizer(UsesWeights, Featurizer):
    """Base of the deep featurizers (clip, clip_regions, x3d, pose)."""

    extra: ClassVar[str] = ""  # the pip extra that installs what it imports
    extra_modules: ClassVar[tuple[str, ...]] = ()
    _checked: bool = False

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in super().get_params().items() if k not in EXECUTION_PARAMS}

    def weights_identity(self) -> str:
        """What stands for the weights in the feature's parameters."""
        return self.resolved_weights().identity

    def extra_ready(self) -> bool:
        return extra_installed(*self.extra_modules)

    def check(self) -> None:
        """Fail early and clearly: extra installed, weights found and fitting the model."""
        if self._checked:
            return
        self.import_extra()
        wf = self.weight_file()
        if wf is not None:
            self.check_weights(self.resolved_weights())
        self._checked = True

    def import_extra(self) -> None:
        """Import the optional libraries (raises `UsageError` naming the extra when absent)."""

    def check_weights(self, weights: ResolvedWeights) -> None:
        """Raise `WeightsError` when the file cannot hold this model's weights (cheap: shapes only)."""

    def spec(
        self, decode: DecodeSpec, upstream: Mapping[str, FeatureSpec], clips: ClipSpec | None = None
    ) -> FeatureSpec:
        self.check()
        base = super().spec(decode, upstream, clips)
        return FeatureSpec(base.name, base.version, {**base.params, "weights": self.weights_identity()}, base.axis)


def attach_weights(featurizers: Iterable[Featurizer], resolver: WeightResolver) -> None:
    """Give a run's featurizers one resolver; `--weights` keys that none of them uses are an error."""
    keys = []
    for featurizer in featurizers:
        if isinstance(featurizer, UsesWeights):
            featurizer.use_weights(resolver)
            wf = featurizer.weight_file()
            if wf is not None:
                keys.append(wf.key)
    resolver.check_keys(keys)
