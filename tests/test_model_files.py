"""Model files: exact round trip, and refusal of tampered, foreign or mismatched inputs."""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from vadctl.errors import FeatureError, ModelFileError
from vadctl.models.files import load_model, read_header
from vadctl.pipeline import fit_model, score_model
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
    api.extract([fast], other, "fast", ["regions", "velocity"], {"regions": {"min_bbox_area": 50}})
    with pytest.raises(FeatureError, match=r"model was fitted on (regions|velocity)@.*lack it.*other parameters"):
        score_model(load_model(saved["aivad"]), other, "fast")
    api.extract([fast], other, "fresh", ["flow"])
    with pytest.raises(FeatureError, match=r"run `vadctl extract … --split fresh --features"):
        score_model(load_model(saved["aivad"]), other, "fresh")
