"""ONNX export of the neural models: parity with torch, scoring through onnxruntime, refusals."""

import numpy as np
import pytest
from neural_stores import fitted_ffp, fitted_scene
from typer.testing import CliRunner

from vadctl.cli import app
from vadctl.errors import ModelFileError, UsageError
from vadctl.models import build
from vadctl.models.files import load_model
from vadctl.models.fit import fit_model
from vadctl.scoring.onnx import OnnxBackend, check_parity, export_onnx
from vadctl.scoring.score import score_model
from vadctl.store import FeatureStore

runner = CliRunner()


@pytest.fixture(scope="module")
def ffp(tmp_path_factory):
    return fitted_ffp(tmp_path_factory)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return fitted_scene(tmp_path_factory, "contrastive")


def test_ffp_export_parity_and_onnx_scores(ffp, tmp_path):
    loaded = load_model(ffp["path"])
    report = export_onnx(loaded.model, tmp_path / "ffp.onnx")
    assert report.path.is_file() and report.parity_inputs == 4
    assert report.max_abs_diff < 1e-4 * max(report.output_scale, 1.0)
    store = FeatureStore(ffp["store"], read_only=True)
    torch_frames, torch_regions = score_model(load_model(ffp["path"]), store, "fast")
    onnx_frames, onnx_regions = score_model(
        load_model(ffp["path"]), store, "fast", backend="onnx", onnx_path=report.path
    )
    assert onnx_frames["video"].to_list() == torch_frames["video"].to_list()
    np.testing.assert_allclose(onnx_frames["psnr"].to_numpy(), torch_frames["psnr"].to_numpy(), atol=1e-3)
    assert abs(len(onnx_regions) - len(torch_regions)) <= max(2, len(torch_regions) // 50)


def test_sceneaware_export_parity_and_onnx_scores(scene, tmp_path):
    loaded = load_model(scene["path"])
    report = export_onnx(loaded.model, tmp_path / "scene.onnx", parity_batch=3)
    assert report.max_abs_diff < 1e-4 * max(report.output_scale, 1.0)
    store = FeatureStore(scene["store"], read_only=True)
    torch_frames, _ = score_model(load_model(scene["path"]), store, "test")
    onnx_frames, _ = score_model(load_model(scene["path"]), store, "test", backend="onnx", onnx_path=report.path)
    np.testing.assert_allclose(onnx_frames["score"].to_numpy(), torch_frames["score"].to_numpy(), rtol=1e-4, atol=1e-5)


def test_onnx_refuses_other_models_and_missing_files(ffp, scene, tmp_path):
    exported = export_onnx(load_model(ffp["path"]).model, tmp_path / "ffp.onnx").path
    with pytest.raises(ModelFileError, match="exported from another model file"):
        OnnxBackend(exported, load_model(scene["path"]).model)
    store = FeatureStore(ffp["store"], read_only=True)
    other = fit_model(store, "ffp", {"resolution": 32, "base_channels": 8, "disc_channels": 8, "steps": 1}, "train")
    with pytest.raises(ModelFileError, match="exported from another model file"):
        OnnxBackend(exported, other.model)
    with pytest.raises(UsageError, match="no such ONNX file"):
        OnnxBackend(tmp_path / "absent.onnx", other.model)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not an onnx model")
    with pytest.raises(ModelFileError, match="not a readable ONNX model"):
        OnnxBackend(garbage, other.model)
    with pytest.raises(UsageError, match="backend 'tensorrt'"):
        score_model(load_model(ffp["path"]), store, "fast", backend="tensorrt")
    with pytest.raises(UsageError, match="model fuvas has no network to export"):
        export_onnx(build("fuvas"), tmp_path / "fuvas.onnx")


def test_cli_export_and_score_with_onnx(ffp, tmp_path):
    export = runner.invoke(app, ["export", "-m", str(ffp["path"]), "--onnx", str(tmp_path / "m.onnx")])
    assert export.exit_code == 0, export.output
    assert "max abs diff" in export.output
    scores = tmp_path / "s.parquet"
    common = ["-m", str(ffp["path"]), "--store", str(ffp["store"]), "--split", "fast", "-o", str(scores)]
    done = runner.invoke(app, ["score", *common, "--backend", "onnx", "--onnx", str(tmp_path / "m.onnx")])
    assert done.exit_code == 0, done.output
    assert "with ffp (onnx)" in done.output and scores.is_file()
    missing = runner.invoke(app, ["score", *common, "--backend", "onnx", "--onnx", str(tmp_path / "none.onnx")])
    assert missing.exit_code == 2 and "no such ONNX file" in missing.output


# ----- parity against an onnxruntime session of the test's own, and a file that is not the model ---------
def torch_outputs(model, inputs: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model.scoring_net().cpu().float()(torch.from_numpy(inputs)).numpy()


def ort_outputs(path, inputs: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: inputs})[0]


@pytest.mark.parametrize("which", ["ffp", "scene"])
def test_exported_file_reproduces_torch_in_an_independent_session(ffp, scene, tmp_path, which):
    model = load_model((ffp if which == "ffp" else scene)["path"]).model
    report = export_onnx(model, tmp_path / "m.onnx")
    shape = model.example_input(1).shape[1:]
    inputs = np.random.default_rng(7).uniform(-1, 1, (3, *shape)).astype(np.float32)  # not the export's inputs
    expected = torch_outputs(model, inputs)
    got = ort_outputs(report.path, inputs)
    assert got.shape == expected.shape and len(got) == 3  # the batch axis is dynamic
    scale = max(float(np.abs(expected).max()), 1.0)
    np.testing.assert_allclose(got, expected, atol=1e-4 * scale)
    assert report.max_abs_diff <= 1e-4 * scale and report.parity_inputs == 4


def tampered_copy(source, target, delta: float = 0.5):
    """The same ONNX file (same metadata: model name, weights digest) with one weight tensor shifted."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(source))
    biggest = max(proto.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    values = numpy_helper.to_array(biggest).copy()
    biggest.CopyFrom(numpy_helper.from_array((values + delta).astype(values.dtype), biggest.name))
    onnx.save(proto, str(target))
    return target


def test_a_different_onnx_file_fails_the_parity_check(ffp, tmp_path):
    model = load_model(ffp["path"]).model
    good = export_onnx(model, tmp_path / "good.onnx").path
    assert check_parity(model, good).ok
    bad = tampered_copy(good, tmp_path / "bad.onnx")
    OnnxBackend(bad, model)  # its metadata still names this model's weights: only parity can tell
    parity = check_parity(model, bad)
    assert not parity.ok and parity.max_abs_diff > 1e-2
    store = FeatureStore(ffp["store"], read_only=True)
    with pytest.raises(ModelFileError, match="differ from the model's"):
        score_model(load_model(ffp["path"]), store, "fast", backend="onnx", onnx_path=bad)
    result = runner.invoke(
        app,
        [
            "score",
            "-m",
            str(ffp["path"]),
            "--store",
            str(ffp["store"]),
            "--split",
            "fast",
            "-o",
            str(tmp_path / "s.parquet"),
            "--backend",
            "onnx",
            "--onnx",
            str(bad),
        ],
    )
    assert result.exit_code == 2 and "differ from the model's" in result.output
    assert not (tmp_path / "s.parquet").exists()
