"""Adding a featurizer or a model is one module: the toy parts below register where they are
defined (and a plug-in's through its entry points), then extract, fit and score through the API
with no other file touched."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vadctl import api
from vadctl.common.specs import ArraySpec
from vadctl.features import FEATURIZERS, Featurizer, Output
from vadctl.features import register as register_featurizer
from vadctl.models import MODELS, Capabilities, VadModel
from vadctl.models import register as register_model
from vadctl.models.base import pick_feature
from vadctl.models.scores import VideoScores


@register_featurizer
class Brightness(Featurizer):
    """Mean gray level of every frame."""

    name = "toy_brightness"
    summary = "mean gray level per frame"

    def __init__(self, scale: float = 1.0):
        self.scale = scale

    def arrays(self, info):
        return {"value": ArraySpec((), "float32", attrs={"units": "gray level"})}

    def process(self, window, upstream):
        return Output(dense={"value": (window.gray.mean(axis=(1, 2)) * self.scale).astype(np.float32)})


@register_model
class BrightnessJump(VadModel):
    """Frames whose brightness changes more than training frames' did, in σ units."""

    name = "toy_jump"
    summary = "brightness jumps"
    needs = "toy_brightness"
    capabilities = Capabilities()

    def __init__(self, feature: str = "toy_brightness"):
        self.feature = feature

    def select_features(self, store, split):
        self.features_ = {"value": pick_feature(store, split, self.feature, "brightness", self.name)}
        return self.features_

    def _jumps(self, store, split, video):
        values = store.entry(store.video(split, video), self.features_["value"])["value"].astype(np.float64)
        return np.abs(np.diff(values, prepend=values[:1]))

    def fit(self, store, split, videos):
        jumps = np.concatenate([self._jumps(store, split, v) for v in videos])
        self.stats_ = np.array([jumps.mean(), jumps.std() + 1e-9])
        return self

    def score(self, store, split, videos):
        for video in videos:
            yield VideoScores(video, (self._jumps(store, split, video) - self.stats_[0]) / self.stats_[1])

    def state(self):
        return {"stats": self.stats_}, {}

    def load_state(self, arrays, meta):
        self.stats_ = np.asarray(arrays["stats"])


def test_a_featurizer_and_a_model_defined_in_one_module_run_end_to_end(video_dir: Path, tmp_path: Path):
    store = tmp_path / "store.zarr"
    report = api.extract([video_dir], store, "train", ["toy_brightness"], {"toy_brightness.scale": 2.0})
    assert report.count("extracted") == 3 and not report.failed
    model = api.fit("toy_jump", store, tmp_path / "toy.safetensors")
    scores = pl.read_parquet(api.score(model, store, "train", tmp_path / "scores.parquet"))
    assert len(scores) == 24 + 20 + 28 and set(scores["model"]) == {"toy_jump"}
    entry = api.open_store(store).video("train", "a").features
    assert [key.split("@")[0] for key in entry] == ["toy_brightness"]


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch):
    """A tiny installed distribution whose entry points name a featurizer and a model."""
    site = tmp_path / "site"
    (site / "toyplug").mkdir(parents=True)
    (site / "toyplug" / "__init__.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from vadctl.features import Featurizer, Output
            from vadctl.specs import ArraySpec  # a path from before the house by stage
            from vadctl.models.base import VadModel


            class EdgeEnergy(Featurizer):
                name = "toy_edges"

                def arrays(self, info):
                    return {"value": ArraySpec((), "float32")}

                def process(self, window, upstream):
                    edges = np.abs(np.diff(window.gray.astype(np.float32), axis=2)).mean(axis=(1, 2))
                    return Output(dense={"value": edges.astype(np.float32)})


            class Constant(VadModel):
                name = "toy_constant"

                def select_features(self, store, split):
                    self.features_ = {}
                    return self.features_

                def fit(self, store, split, videos):
                    return self

                def score(self, store, split, videos):
                    return iter(())

                def state(self):
                    return {}, {}

                def load_state(self, arrays, meta):
                    pass
            """
        )
    )
    info = site / "toyplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[vadctl.featurizers]\ntoy_edges = toyplug:EdgeEnergy\n\n[vadctl.models]\ntoy_constant = toyplug:Constant\n"
    )
    monkeypatch.syspath_prepend(str(site))
    for registry in (FEATURIZERS, MODELS):
        monkeypatch.setattr(registry, "_loaded", False)
    yield
    for registry, name in ((FEATURIZERS, "toy_edges"), (MODELS, "toy_constant")):
        registry._items.pop(name, None)
    sys.modules.pop("toyplug", None)


def test_plugins_register_through_entry_points(plugin, video_dir: Path, tmp_path: Path):
    assert "toy_edges" in FEATURIZERS and "toy_constant" in MODELS
    report = api.extract([video_dir / "cam"], tmp_path / "store.zarr", "train", ["toy_edges"])
    assert report.count("extracted") == 1
    record = api.open_store(tmp_path / "store.zarr").video("train", "c")
    assert [key.split("@")[0] for key in record.features] == ["toy_edges"]
