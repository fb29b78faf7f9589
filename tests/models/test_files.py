"""Model files: exact round trip, and refusal of tampered, foreign or mismatched inputs."""

import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from model_files import digest, read_parts, rewrite
from safetensors.numpy import save_file

from vadctl.errors import FeatureError, ModelFileError
from vadctl.models.files import load_model, read_header
from vadctl.models.fit import fit_model
from vadctl.scoring.score import score_model
from vadctl.store import FeatureStore


@pytest.fixture(scope="module")
def saved(model_store, tmp_path_factory) -> dict:
    store = FeatureStore(model_store["store"], read_only=True)
    folder = tmp_path_factory.mktemp("files")
    paths = {}
    for name in ("aivad", "fuvas"):
        paths[name] = folder / f"{name}.safetensors"
        fit_model(store, name, {"n_folds": 3} if name == "aivad" else {}, "train", out=paths[name])
    return paths


@pytest.mark.parametrize("name", ["aivad", "fuvas"])
def test_round_trip_scores_identically(saved, model_store, name):
    store = FeatureStore(model_store["store"], read_only=True)
    loaded = load_model(saved[name])
    fresh = fit_model(store, name, {"n_folds": 3} if name == "aivad" else {}, "train")
    again = list(fresh.model.score(store, "fast", ["f0", "f1"]))
    for a, b in zip(loaded.model.score(store, "fast", ["f0", "f1"]), again, strict=True):
        np.testing.assert_allclose(a.frame_scores, b.frame_scores, rtol=1e-5)  # float32 features
    assert loaded.calibration.threshold() == pytest.approx(fresh.calibration.threshold())
    header = read_header(saved[name])
    assert header["model"] == name and header["provenance"]["split"] == "train"
    assert all("hash" in spec for spec in header["features"].values())


def test_tampered_file_is_refused(saved, tmp_path: Path):
    data = bytearray(saved["aivad"].read_bytes())
    data[-5] ^= 0xFF  # a tensor byte
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(bad)


def test_edited_header_is_refused(saved, tmp_path: Path):
    raw = saved["aivad"].read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["vadctl"])
    meta["params"]["smoothing_sigma"] = 0.0
    header["__metadata__"]["vadctl"] = json.dumps(meta)
    body = json.dumps(header).encode()
    edited = tmp_path / "edited.safetensors"
    edited.write_bytes(struct.pack("<Q", len(body)) + body + raw[8 + size :])
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_model(edited)


def test_foreign_files_are_refused(tmp_path: Path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="not a vadctl model"):
        load_model(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(plain))
    with pytest.raises(ModelFileError, match="no vadctl header"):
        load_model(plain)
    pickle_like = tmp_path / "model.pt"
    pickle_like.write_bytes(b"\x80\x04\x95" + b"\x00" * 100)  # a pickle header is never unpickled
    with pytest.raises(ModelFileError):
        load_model(pickle_like)


def test_store_with_other_feature_parameters_is_refused(saved, model_store, tmp_path: Path):
    from vadctl import api

    other = FeatureStore(tmp_path / "other.zarr", create=True)
    fast = model_store["videos"] / "fast"
    api.extract([fast], other, "fast", ["regions", "velocity", "motion"], {"regions": {"min_bbox_area": 50}})
    other_parameters = r"model was fitted on (regions|velocity|motion)@.*lack it.*other parameters"
    with pytest.raises(FeatureError, match=other_parameters):
        score_model(load_model(saved["aivad"]), other, "fast")
    api.extract([fast], other, "fresh", ["flow"])
    with pytest.raises(FeatureError, match=r"run `vadctl extract … --split fresh --features"):
        score_model(load_model(saved["aivad"]), other, "fresh")


# ----- every way a file can be not-a-vadctl-model -----------------------------------------------------------
def test_saved_file_digest_is_sha256_over_header_and_tensors(saved):
    meta, tensors = read_parts(saved["aivad"])
    assert meta["vadctl_digest"] == digest(meta["vadctl"], tensors)
    copy = rewrite(saved["aivad"], saved["aivad"].parent / "resigned.safetensors")
    assert load_model(copy).header == load_model(saved["aivad"]).header  # re-signing alone changes nothing


def edited_header(saved, **changes):
    header = json.loads(read_parts(saved["aivad"])[0]["vadctl"])
    for key, value in changes.items():
        if value is None:
            header.pop(key)
        else:
            header[key] = value
    return header


def edited_state(saved, velocity_position: str, parameter: str | None = None):
    header = edited_header(saved)
    header["state"]["velocity_position"] = velocity_position
    if parameter is not None:
        header["params"]["velocity_position"] = parameter
    return header


def without(prefix: str):
    return lambda tensors: {k: v for k, v in tensors.items() if not k.startswith(prefix)}


@pytest.mark.parametrize(
    "case, message",
    [
        ("stripped digest", "checksum mismatch"),
        ("empty digest", "checksum mismatch"),
        ("another file's digest", "checksum mismatch"),
        ("tensor added after signing", "checksum mismatch"),
        ("header is not JSON", "not valid JSON"),
        ("header is a JSON list", "not a JSON object"),
        ("other format", "format 'onnx'"),
        ("no format", "format None"),
        ("newer format version", "model file format 2"),
        ("unknown model", "unknown model 'gpt'"),
        ("unknown parameter", "unknown parameter"),
        ("no model key", "incomplete or malformed (no model)"),
        ("no features", "incomplete or malformed (no features)"),
        ("no state", "incomplete or malformed (no state)"),
        ("state tensors removed", "does not fit model aivad"),
        ("no calibration", "incomplete or malformed (no calibration)"),
        ("no quantiles", "array calibration.quantiles is missing"),
        ("velocity form not a fitted one", "velocity_position 'auto': expected one of none, y, xy"),
        ("velocity form unlike the parameter", "velocity_position 'none' recorded, 'y' in the parameters"),
    ],
)
def test_not_a_vadctl_model_is_refused_with_its_reason(saved, tmp_path: Path, case: str, message: str):
    source, target = saved["aivad"], tmp_path / "m.safetensors"
    other_digest = read_parts(saved["fuvas"])[0]["vadctl_digest"]
    header_json = read_parts(source)[0]["vadctl"]
    build = {
        "stripped digest": lambda: rewrite(source, target, metadata=lambda m: {"vadctl": m["vadctl"]}),
        "empty digest": lambda: rewrite(source, target, metadata=lambda m: {**m, "vadctl_digest": ""}),
        "another file's digest": lambda: rewrite(
            source, target, metadata=lambda m: {**m, "vadctl_digest": other_digest}
        ),
        "tensor added after signing": lambda: rewrite(
            source, target, tensors=lambda t: {**t, "extra": np.ones(2)}, sign=False
        ),
        "header is not JSON": lambda: rewrite(source, target, header=header_json[:-1]),
        "header is a JSON list": lambda: rewrite(source, target, header="[1, 2]"),
        "other format": lambda: rewrite(source, target, header=edited_header(saved, format="onnx")),
        "no format": lambda: rewrite(source, target, header=edited_header(saved, format=None)),
        "newer format version": lambda: rewrite(source, target, header=edited_header(saved, format_version=2)),
        "unknown model": lambda: rewrite(source, target, header=edited_header(saved, model="gpt")),
        "unknown parameter": lambda: rewrite(source, target, header=edited_header(saved, params={"n_neighbours": 3})),
        "no model key": lambda: rewrite(source, target, header=edited_header(saved, model=None)),
        "no features": lambda: rewrite(source, target, header=edited_header(saved, features=None)),
        "no state": lambda: rewrite(source, target, header=edited_header(saved, state=None)),
        "state tensors removed": lambda: rewrite(source, target, tensors=without("state.")),
        "no calibration": lambda: rewrite(source, target, header=edited_header(saved, calibration=None)),
        "no quantiles": lambda: rewrite(source, target, tensors=without("calibration.")),
        "velocity form not a fitted one": lambda: rewrite(source, target, header=edited_state(saved, "auto")),
        "velocity form unlike the parameter": lambda: rewrite(
            source, target, header=edited_state(saved, "none", parameter="y")
        ),
    }
    path = build[case]()
    with pytest.raises(ModelFileError, match=re.escape(message)):
        load_model(path)
    if case in ("stripped digest", "header is a JSON list", "other format"):
        with pytest.raises(ModelFileError):
            read_header(path)  # `vadctl models --file` checks as load does


def test_cut_short_and_empty_files_are_refused(saved, tmp_path: Path):
    data = saved["aivad"].read_bytes()
    for name, content in (("cut", data[: len(data) // 2]), ("header-only", data[:200]), ("empty", b"")):
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(ModelFileError, match="not a vadctl model"):
            load_model(path)
    folder = tmp_path / "folder.safetensors"
    folder.mkdir()
    with pytest.raises(ModelFileError, match="is a folder"):
        load_model(folder)


def test_cli_refuses_a_stripped_digest(saved, model_store, tmp_path: Path):
    from typer.testing import CliRunner

    from vadctl.cli import app

    stripped = rewrite(saved["aivad"], tmp_path / "m.safetensors", metadata=lambda m: {"vadctl": m["vadctl"]})
    args = ["score", "-m", str(stripped), "--store", str(model_store["store"]), "--split", "fast"]
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "s.parquet")])
    assert result.exit_code == 2 and "checksum mismatch" in result.output
    assert not (tmp_path / "s.parquet").exists()


def test_save_then_load_keeps_header_and_calibration_exactly(saved, tmp_path: Path):
    """Saving inside the test (not only in a fixture), so every line of save_model is reached here."""
    from vadctl import __version__
    from vadctl.models.files import save_model

    first = load_model(saved["aivad"])
    path = save_model(tmp_path / "again.safetensors", first.model, first.calibration, {"split": "train"})
    again = load_model(path)
    header = read_header(path)
    assert header["format"] == "vadctl-model" and header["format_version"] == 1
    assert header["vadctl_version"] == __version__ and header["model"] == "aivad"
    assert header["params"] == first.model.get_params() == again.model.get_params()
    assert header["features"] == {role: spec.to_dict() for role, spec in first.model.features_.items()}
    assert header["provenance"]["split"] == "train" and "created_at" in header["provenance"]
    assert header["calibration"] == first.calibration.to_meta()
    _, tensors = read_parts(path)
    assert tensors["calibration.quantiles"].dtype == np.float64
    np.testing.assert_array_equal(again.calibration.quantiles, first.calibration.quantiles)
    assert again.calibration.threshold("percentile:99") == first.calibration.threshold("percentile:99")
    assert {name for name in tensors if name.startswith("state.")} == {f"state.{k}" for k in first.model.state()[0]}


def test_a_file_from_before_a_default_changed_scores_as_it_did(model_store, tmp_path: Path):
    """AI-VAD's defaults changed (velocity with the box position, the motion attribute, …): a file
    written before holds no `velocity_position` or `use_motion_features` and must keep meaning
    what it meant then (`file_defaults`), not pick up today's defaults."""
    store = FeatureStore(model_store["store"], read_only=True)
    old = {"n_folds": 3, "velocity_position": "none", "velocity_scale": "pixels", "use_motion_features": False}
    old |= {"n_components_velocity": 2, "smoothing_sigma": 3.0}
    made = fit_model(store, "aivad", old, "train", out=tmp_path / "then.safetensors")
    header = json.loads(read_parts(made.path)[0]["vadctl"])
    for added in ("velocity_position", "velocity_scale", "use_motion_features", "motion_feature", "pca_level_motion"):
        header["params"].pop(added)
    header["state"].pop("velocity_position")  # nor the form "auto" chose
    then = rewrite(made.path, tmp_path / "old.safetensors", header=header)
    loaded = load_model(then)
    assert loaded.model.velocity_position == "none" and loaded.model.use_motion_features is False
    frames, _ = score_model(loaded, store, "fast")
    expected, _ = score_model(load_model(made.path), store, "fast")
    np.testing.assert_allclose(frames["score"].to_numpy(), expected["score"].to_numpy())
    today = fit_model(store, "aivad", {"n_folds": 3}, "train").model
    assert today.velocity_position == "auto"  # what a new fit means: the form chosen on its training videos
    assert today.velocity_dims_ == 1 + (today.velocity_position_ == "y")
