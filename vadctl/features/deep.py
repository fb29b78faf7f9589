"""What featurizers with model weights share: weight resolution, identity, availability checks.

A weighted featurizer's identity is its parameters plus the sha256 of its weights (never their
path), so moving a file keeps cached features and other weights make a new entry. Parameters that
change how it runs but not what it computes (`device`, `batch_size`, `runtime`) stay out of the identity.
Everything that can be checked without running the model is checked when the spec is computed
(before any video): the extra is installed, the weights are found and hold the model's tensors.
Featurizers whose weights depend on a parameter (flow's RAFT backend, regions' detectors) use the
same mixin, so there is one mechanism for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from vadctl.backbones.torch_compat import extra_installed
from vadctl.backbones.weights import ResolvedWeights, WeightFile, WeightResolver
from vadctl.features.base import Featurizer

EXECUTION_PARAMS = ("device", "batch_size", "runtime")


class UsesWeights:
    """Mixin: a featurizer that may need weights (which file may depend on its parameters).

    The one mechanism for weight identity: `identity_params` checks what can be checked before
    any video (the extra is installed, the file is found and holds the model's tensors) and puts
    the weights' sha256 (or a bundled model's) into the feature's identity.
    """

    extra: ClassVar[str] = ""  # the pip extra that installs what it imports
    extra_modules: ClassVar[tuple[str, ...]] = ()
    _resolver: WeightResolver | None = None
    _resolved: ResolvedWeights | None = None
    _checked: bool = False

    def weight_file(self) -> WeightFile | None:
        """The weight file these parameters need, or None."""
        return None

    def bundled_identity(self) -> str | None:
        """For models shipped inside a library (pose): what stands for their weights."""
        return None

    def use_weights(self, resolver: WeightResolver) -> None:
        self._resolver = resolver
        self._resolved = None
        self._checked = False

    def resolved_weights(self) -> ResolvedWeights:
        """The weight file, found (raises `WeightsError` naming what was looked for where)."""
        if self._resolved is None:
            wf = self.weight_file()
            if wf is None:
                raise RuntimeError(f"{type(self).__name__} needs no weights with these parameters")
            self._resolved = (self._resolver or WeightResolver()).resolve(wf)
        return self._resolved

    def weights_identity(self) -> str | None:
        """What stands for the weights in the feature's parameters: the content, never the path."""
        if self.weight_file() is not None:
            return self.resolved_weights().identity
        return self.bundled_identity()

    def needs_weights(self) -> bool:
        return self.weight_file() is not None or bool(self.extra_modules)

    def extra_ready(self) -> bool:
        return extra_installed(*self.extra_modules)

    def check(self) -> None:
        """Fail early and clearly: extra installed, weights found and fitting the model."""
        if self._checked or not self.needs_weights():
            return
        self.import_extra()
        if self.weight_file() is not None:
            self.check_weights(self.resolved_weights())
        self._checked = True

    def import_extra(self) -> None:
        """Import the optional libraries (raises `UsageError` naming the extra when absent)."""

    def check_weights(self, weights: ResolvedWeights) -> None:
        """Raise `WeightsError` when the file cannot hold this model's weights (cheap: shapes only)."""

    def identity_params(self) -> dict[str, Any]:
        if not self.needs_weights():
            return {}
        self.check()
        identity = self.weights_identity()
        return {"weights": identity} if identity else {}


class WeightedFeaturizer(UsesWeights, Featurizer):
    """Base of the deep featurizers (clip, clip_regions, x3d, pose): parameters that change how
    they run but not what they compute (`device`, `batch_size`) stay out of the identity."""

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in super().get_params().items() if k not in EXECUTION_PARAMS}


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
