"""ONNX export of the neural models: parity with torch, scoring through onnxruntime, refusals."""

import numpy as np
import pytest
from neural_stores import fitted_ffp, fitted_scene
from typer.testing import CliRunner

from vadctl.cli import app
from vadctl.errors import ModelFileError, UsageError
from vadctl.models import build
from vadctl.models.files import load_model
from vadctl.onnx_export import OnnxBackend, export_onnx
from vadctl.pipeline import fit_model, score_model
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
