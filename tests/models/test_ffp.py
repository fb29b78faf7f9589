"""FFP on a tiny synthetic store: it finds and boxes a fast object; resume equals an uninterrupted run."""

import pickle

import numpy as np
import polars as pl
import pytest
import torch
from neural_stores import FFP_PARAMS, ffp_store, fitted_ffp
from typer.testing import CliRunner

from vadctl.cli import app
from vadctl.common.progress import Progress
from vadctl.errors import FeatureError, ModelFileError, UsageError, WeightsError
from vadctl.models import build
from vadctl.models.files import load_model, save_model
from vadctl.models.fit import fit_model
from vadctl.models.training import CHECKPOINT_FILE, TrainOptions
from vadctl.review.metrics import align, evaluate, read_labels
from vadctl.scoring.score import score_model
from vadctl.store import FeatureStore

runner = CliRunner()
RESUME_PARAMS = {**FFP_PARAMS, "steps": 6}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    return fitted_ffp(tmp_path_factory)


@pytest.fixture(scope="module")
def scored(fitted):
    store = FeatureStore(fitted["store"], read_only=True)
    return score_model(load_model(fitted["path"]), store, "fast")


def test_ffp_finds_the_fast_object(fitted, scored):
    frames, _ = scored
    assert {"score", "score_norm", "psnr", "score_minmax"} <= set(frames.columns)
    np.testing.assert_allclose(frames["score"].to_numpy(), -frames["psnr"].to_numpy())
    joined, _ = align(frames, read_labels(fitted["labels"]))
    assert evaluate(joined, "score").micro_auroc >= 0.85
    assert evaluate(joined, "score_minmax").macro_auroc >= 0.85
    minmax = frames.group_by("video").agg(pl.col("score_minmax").min().alias("lo"), pl.col("score_minmax").max())
    assert (minmax["lo"] == 0).all() and (minmax["score_minmax"] == 1).all()
    cal = fitted["result"].calibration
    assert cal.method == "holdout" and cal.n_frames > 0


def test_ffp_boxes_cover_the_fast_object_in_source_pixels(fitted, scored):
    _, regions = scored
    assert len(regions) > 0
    assert regions["x2"].max() <= 96 + 1e-3 and regions["y2"].max() <= 64 + 1e-3  # source size, not 32×32
    hits, shown = 0, 0
    for video, square in fitted["fast"].items():
        boxes = regions.filter(pl.col("video") == video)
        for t in range(5, 40):
            x = square.x + square.dx * t
            if not 0 <= x <= 96 - square.size:  # fully inside the frame
                continue
            shown += 1
            here = boxes.filter(pl.col("frame") == t)
            overlap = (
                (here["x1"] < x + square.size)
                & (here["x2"] > x)
                & (here["y1"] < square.y + square.size)
                & (here["y2"] > square.y)
            )
            hits += bool(overlap.any())
    assert shown > 0 and hits / shown >= 0.6


class StopAt(Progress):
    """A progress callback that interrupts training after a given step (like Ctrl-C between steps)."""

    def __init__(self, step: int):
        self.stop = step

    def train_step(self, step, losses):
        if step == self.stop:
            raise KeyboardInterrupt


def generator_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.generator_.state_dict().items()}


def test_resumed_training_equals_an_uninterrupted_run(tmp_path, tmp_path_factory):
    store = FeatureStore(ffp_store(tmp_path_factory)["store"], read_only=True)
    whole = fit_model(store, "ffp", RESUME_PARAMS, "train", out=tmp_path / "whole.safetensors")
    path = tmp_path / "parts.safetensors"
    first = TrainOptions(progress=StopAt(3), checkpoint_every=0)
    with pytest.raises(KeyboardInterrupt):
        fit_model(store, "ffp", RESUME_PARAMS, "train", out=path, training=first)
    assert not path.exists() and (tmp_path / "parts.safetensors.ckpt" / CHECKPOINT_FILE).is_file()
    assert any("interrupted at step 3" in note for note in first.notes)
    resumed = fit_model(store, "ffp", RESUME_PARAMS, "train", out=path, training=TrainOptions(resume=True))
    assert any("resumed" in note and "step 3 of 6" in note for note in resumed.notes)
    a, b = generator_state(whole.model), generator_state(resumed.model)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert resumed.model.history_ == whole.model.history_
    scores_a = next(whole.model.score(store, "fast", ["f0"])).frame_scores
    scores_b = next(load_model(path).model.score(store, "fast", ["f0"])).frame_scores
    np.testing.assert_array_equal(scores_a, scores_b)


def test_a_time_limit_stops_training_and_keeps_the_steps_done(tmp_path, tmp_path_factory):
    """A budget in time (other jobs decide a shared CPU's speed): the model holds the steps done."""
    store = FeatureStore(ffp_store(tmp_path_factory)["store"], read_only=True)
    options = TrainOptions(time_limit=0.0, checkpoint_every=0)  # reached after the first step
    fitted = fit_model(store, "ffp", RESUME_PARAMS, "train", out=tmp_path / "m.safetensors", training=options)
    assert fitted.model.steps_ == 1 and load_model(tmp_path / "m.safetensors").model.steps_ == 1
    assert any("time limit" in note and "step 1 of 6" in note for note in options.notes)


def test_resume_refuses_missing_or_foreign_checkpoints(tmp_path, tmp_path_factory):
    store = FeatureStore(ffp_store(tmp_path_factory)["store"], read_only=True)
    path = tmp_path / "m.safetensors"
    with pytest.raises(UsageError, match="no checkpoint to resume from"):
        fit_model(store, "ffp", RESUME_PARAMS, "train", out=path, training=TrainOptions(resume=True))
    fit_model(store, "ffp", {**RESUME_PARAMS, "steps": 2}, "train", out=path)
    with pytest.raises(UsageError, match=r"another run \(params.*lr_g"):
        fit_model(store, "ffp", {**RESUME_PARAMS, "lr_g": 0.01}, "train", out=path, training=TrainOptions(resume=True))
    with pytest.raises(UsageError, match="beyond the 1 steps"):
        fit_model(store, "ffp", {**RESUME_PARAMS, "steps": 1}, "train", out=path, training=TrainOptions(resume=True))
    with pytest.raises(UsageError, match="does not train in steps"):
        fit_model(store, "fuvas", {}, "train", training=TrainOptions(resume=True))


def test_bad_parameters_are_named(tmp_path_factory):
    store = FeatureStore(ffp_store(tmp_path_factory)["store"], read_only=True)
    with pytest.raises(UsageError, match="resolution=30 must be a multiple of 8"):
        fit_model(store, "ffp", {**RESUME_PARAMS, "resolution": 30}, "train")
    with pytest.raises(FeatureError, match="resolution 64 exceeds the cached frames"):
        fit_model(store, "ffp", {**RESUME_PARAMS, "resolution": 64}, "train")
    with pytest.raises(UsageError, match="device='tpu'"):
        fit_model(store, "ffp", {**RESUME_PARAMS, "device": "tpu"}, "train")
    with pytest.raises(UsageError, match="unknown parameter"):
        build("ffp", {"learning_rate": 1})


def test_model_file_loads_without_pickle_and_refuses_tampering(fitted, tmp_path, monkeypatch):
    store = FeatureStore(fitted["store"], read_only=True)
    expected = next(load_model(fitted["path"]).model.score(store, "fast", ["f1"])).frame_scores

    def refuse(*args, **kwargs):
        raise AssertionError("model files must load without unpickling")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = load_model(fitted["path"])
    np.testing.assert_array_equal(next(loaded.model.score(store, "fast", ["f1"])).frame_scores, expected)
    monkeypatch.undo()

    tampered = tmp_path / "tampered.safetensors"
    data = bytearray(fitted["path"].read_bytes())
    data[-5] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(tampered)

    model = loaded.model
    arrays, meta = model.state()
    lacking = tmp_path / "lacking.safetensors"
    monkeypatch.setattr(type(model), "state", lambda self: ({k: v for k, v in arrays.items() if "outc" not in k}, meta))
    save_model(lacking, model, loaded.calibration)
    monkeypatch.undo()
    expected = "model state does not fit model ffp and its parameters: generator weights do not fit"
    with pytest.raises(ModelFileError, match=expected):
        load_model(lacking)


def test_cli_fits_scores_and_evaluates_ffp(fitted, tmp_path):
    model = tmp_path / "ffp.safetensors"
    common = ["--store", str(fitted["store"])]
    params = [x for k, v in FFP_PARAMS.items() if k != "steps" for x in ("-p", f"{k}={v}")]
    fit = runner.invoke(app, ["fit", "-m", "ffp", *common, "-o", str(model), *params, "--steps", "3", "-q"])
    assert fit.exit_code == 0, fit.output
    assert "ffp fitted on 4 video(s)" in fit.output and model.is_file()
    again = runner.invoke(app, ["fit", "-m", "ffp", *common, "-o", str(model), *params, "--steps", "5", "--resume"])
    assert again.exit_code == 0, again.output
    assert "resumed from" in again.output and "at step 3 of 5" in again.output
    scores = tmp_path / "scores.parquet"
    score = runner.invoke(app, ["score", "-m", str(model), *common, "--split", "fast", "-o", str(scores)])
    assert score.exit_code == 0, score.output
    assert (tmp_path / "scores.regions.parquet").is_file()
    result = runner.invoke(app, ["eval", "--scores", str(scores), "--labels", str(fitted["labels"])])
    assert result.exit_code == 0 and "micro AUROC" in result.output
    minmax = runner.invoke(
        app, ["eval", "--scores", str(scores), "--labels", str(fitted["labels"]), "--column", "score_minmax"]
    )
    assert minmax.exit_code == 0 and "'score_minmax'" in minmax.output
    bad = runner.invoke(app, ["fit", "-m", "ffp", *common, "-o", str(model), "-p", "resolution=30", "--steps", "1"])
    assert bad.exit_code == 2
    assert "error: ffp: resolution=30 must be a multiple of 8" in bad.output and "Traceback" not in bad.output
    wrong = runner.invoke(app, ["fit", "-m", "fuvas", *common, "--epochs", "3"])
    assert wrong.exit_code == 2 and "unknown parameter(s) epochs" in wrong.output


def test_motion_loss_trains_through_a_local_raft(tmp_path, tmp_path_factory, monkeypatch):
    """motion_flow adds FFP's L_op with RAFT from a local file: the loss is logged, its gradient reaches
    the generator, and the weights' content (not path) is recorded and guards resuming."""
    from tiny_models import raft_small_weights

    monkeypatch.setenv("VADCTL_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    store = FeatureStore(ffp_store(tmp_path_factory)["store"], read_only=True)
    weights = raft_small_weights(tmp_path)
    params = {**FFP_PARAMS, "steps": 2, "motion_flow": "raft_small", "flow_iterations": 2}
    with pytest.raises(WeightsError, match=r"ffp motion loss: .*raft_small.*pass -p flow_weights=PATH"):
        fit_model(store, "ffp", params, "train")
    with pytest.raises(WeightsError, match=r"flow_weights=.*missing.safetensors: no such file"):
        fit_model(store, "ffp", {**params, "flow_weights": str(tmp_path / "missing.safetensors")}, "train")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(WeightsError, match=r"ffp motion loss: .*junk.safetensors: not a readable"):
        fit_model(store, "ffp", {**params, "flow_weights": str(tmp_path / "junk.safetensors")}, "train")
    path = tmp_path / "m.safetensors"
    fitted = fit_model(store, "ffp", {**params, "flow_weights": str(weights)}, "train", out=path)
    history = fitted.model.history_
    assert history and all(np.isfinite(h["op"]) and h["op"] >= 0 for h in history)
    plain = fit_model(store, "ffp", {**FFP_PARAMS, "steps": 2}, "train")
    moved = [
        not torch.equal(a, b)
        for a, b in zip(generator_state(fitted.model).values(), generator_state(plain.model).values(), strict=True)
    ]
    assert any(moved)  # the motion term changed the generator's updates
    loaded = load_model(path).model
    assert loaded.flow_weights_sha256_ == fitted.model.flow_weights_sha256_ and len(loaded.flow_weights_sha256_) == 64
    other = raft_small_weights(tmp_path / "other", seed=1)
    resume = TrainOptions(resume=True)
    with pytest.raises(UsageError, match="another run"):
        fit_model(store, "ffp", {**params, "flow_weights": str(other)}, "train", out=path, training=resume)
    with pytest.raises(UsageError, match="motion_flow='flownet2'"):
        fit_model(store, "ffp", {**params, "motion_flow": "flownet2"}, "train")
