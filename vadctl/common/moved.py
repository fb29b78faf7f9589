"""Module paths from before the house by stage, kept importable for plug-ins and scripts.

`import vadctl.specs` (or `from vadctl.results import VideoScores`) still works: a finder on
`sys.meta_path` answers each old path with the module that holds its code now, and warns once
(DeprecationWarning) with the new path. Nothing in vadctl itself uses the old paths.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "vadctl.annotate": "vadctl.review.annotate",
    "vadctl.atomic": "vadctl.common.atomic",
    "vadctl.batching": "vadctl.backbones.batching",
    "vadctl.catalog": "vadctl.video.catalog",
    "vadctl.checks": "vadctl.common.checks",
    "vadctl.dataset": "vadctl.nightly.results",
    "vadctl.event_reader": "vadctl.review.event_reader",
    "vadctl.events": "vadctl.scoring.events",
    "vadctl.executors.driver": "vadctl.extraction.driver",
    "vadctl.executors.scoring": "vadctl.scoring.parallel",
    "vadctl.executors.threads": "vadctl.common.threads",
    "vadctl.executors.work": "vadctl.extraction.work",
    "vadctl.extract": "vadctl.extraction.extractor",
    "vadctl.faults": "vadctl.common.faults",
    "vadctl.incremental": "vadctl.nightly.incremental",
    "vadctl.jobfile": "vadctl.nightly.jobfile",
    "vadctl.joblog": "vadctl.nightly.joblog",
    "vadctl.jobs": "vadctl.nightly.runner",
    "vadctl.ledger": "vadctl.nightly.ledger",
    "vadctl.metrics": "vadctl.review.metrics",
    "vadctl.names": "vadctl.common.checks",
    "vadctl.native_stderr": "vadctl.video.native_stderr",
    "vadctl.onnx_export": "vadctl.scoring.onnx",
    "vadctl.options": "vadctl.common.params",
    "vadctl.params": "vadctl.common.params",
    "vadctl.pipeline": "vadctl.scoring.score",
    "vadctl.progress": "vadctl.common.progress",
    "vadctl.provenance": "vadctl.scoring.provenance",
    "vadctl.raft": "vadctl.backbones.raft",
    "vadctl.recipes": "vadctl.extraction.for_model",
    "vadctl.registry": "vadctl.common.registry",
    "vadctl.report": "vadctl.review.report",
    "vadctl.results": "vadctl.models.scores",
    "vadctl.segments": "vadctl.extraction.segments",
    "vadctl.specs": "vadctl.common.specs",
    "vadctl.thumbs": "vadctl.review.thumbs",
    "vadctl.torch_compat": "vadctl.backbones.torch_compat",
    "vadctl.training": "vadctl.models.training",
    "vadctl.video_labels": "vadctl.video.labels",
    "vadctl.weights": "vadctl.backbones.weights",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the module it moved to."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        """The module was run under its new name already."""


def install() -> None:
    """Put the finder on `sys.meta_path` (once)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
