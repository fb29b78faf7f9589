"""Model files that pass their checksum but do not fit together are refused in one line; with a key
configured, models are signed (HMAC-SHA256) at fit and unsigned or foreign ones refused at score."""

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file
from typer.testing import CliRunner

from vadctl.cli import app
from vadctl.models import files

runner = CliRunner()


def vadctl(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(scope="module")
def fitted(model_store, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("trust_models")
    models = {}
    for name, key in (("aivad", None), ("fuvas", None), ("aivad", "key-one")):
        path = out / f"{name}{'-signed' if key else ''}.safetensors"
        env = {"VADCTL_MODEL_KEY": key} if key else None
        fit = vadctl("fit", "-m", name, "-s", model_store["store"], "-o", path, "-p", "n_folds=3", "-q", env=env)
        assert fit.exit_code == 0, fit.output
        models[path.stem] = path
    return {"out": out, "store": model_store["store"], **models}


def craft(source: Path, target: Path, change) -> Path:
    """Rewrite a model file the way someone who edits it would: change header or tensors, then
    recompute the checksum so it passes as intact."""
    with safe_open(str(source), framework="numpy") as handle:
        metadata = dict(handle.metadata())
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    header = json.loads(metadata[files.HEADER_KEY])
    change(header, tensors)
    tensors = {name: np.ascontiguousarray(array) for name, array in tensors.items()}
    header_json = json.dumps(header)
    metadata.update({files.HEADER_KEY: header_json, files.DIGEST_KEY: files._digest(header_json, tensors)})
    save_file(tensors, str(target), metadata=metadata)
    return target


def _set(path: tuple, value):
    def change(header, tensors):
        node = header
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def _tensor(name: str, fn):
    def change(header, tensors):
        tensors[name] = fn(tensors[name])

    return change


CASES = [
    ("aivad", _tensor("state.velocity.means", lambda a: np.concatenate([a, a[:, :1]], axis=1)), "velocity.means"),
    (
        "aivad",
        _tensor("state.velocity.covariances", lambda a: np.concatenate([a, a[:, :, :1]], axis=2)),
        "velocity.covariances",
    ),
    ("aivad", _tensor("state.velocity.weights", lambda a: np.ones(len(a), np.int64)), "dtype int64"),
    ("aivad", _tensor("state.velocity.means", lambda a: np.full_like(a, np.nan)), "NaN"),
    ("aivad", _set(("state", "calibration", "velocity", "scale"), 0.0), "scale"),
    # a scale that loads as positive but divides scores to infinity (issue: 274 of 288 frames were inf)
    ("aivad", _set(("state", "calibration", "velocity", "scale"), 1e-308), "velocity.scale is 1e-308"),
    ("aivad", _set(("calibration", "std"), 0.0), "calibration std"),
    ("aivad", _set(("calibration", "mean"), float("nan")), "calibration mean"),
    ("aivad", _set(("params", "n_velocity_bins"), 2), "velocity.means"),
    ("aivad", _set(("state", "types"), ["velocity", "gait"]), "feature types"),
    ("aivad", lambda header, tensors: header.pop("state"), "malformed"),
    ("fuvas", _tensor("state.components", lambda a: a[:, :-1]), "components"),
    ("fuvas", _set(("state", "shape"), [3, 3]), "components"),
    ("fuvas", _tensor("state.explained_variance", lambda a: -a), "negative"),
    ("fuvas", _tensor("calibration.quantiles", lambda a: a[::-1].copy()), "quantiles"),
]


@pytest.mark.parametrize("model, change, named", CASES)
def test_crafted_model_files_are_refused_in_one_line(fitted, tmp_path: Path, model, change, named):
    crafted = craft(fitted[model], tmp_path / "crafted.safetensors", change)
    out = tmp_path / "scores.parquet"
    result = vadctl("score", "-m", crafted, "-s", fitted["store"], "--split", "fast", "-o", out)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0], result.stderr
    assert not out.exists()


def test_signed_models_score_only_with_their_key(fitted, tmp_path: Path):
    signed, unsigned, out = fitted["aivad-signed"], fitted["aivad"], tmp_path / "s.parquet"
    score = ["score", "-s", fitted["store"], "--split", "fast", "-o", out, "-m"]
    assert vadctl(*score, signed, env={"VADCTL_MODEL_KEY": "key-one"}).exit_code == 0
    assert vadctl(*score, signed).exit_code == 0  # no key configured here: nothing to check against
    for model, key, reason in (
        (signed, "key-two", "signed with another key"),
        (unsigned, "key-one", "unsigned"),
        (craft(signed, tmp_path / "edited.safetensors", _set(("calibration", "mean"), 0.5)), "key-one", "another key"),
    ):
        result = vadctl(*score, model, env={"VADCTL_MODEL_KEY": key})
        assert result.exit_code == 2 and reason in result.stderr, result.output


def test_key_file_named_in_the_config(fitted, tmp_path: Path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "model.key").write_text("key-one\n")
    config = tmp_path / "config.toml"
    config.write_text('[models]\nkey_file = "keys/model.key"\n')
    out = tmp_path / "s.parquet"
    score = ["score", "-s", fitted["store"], "--split", "fast", "-o", out, "-m"]
    assert vadctl(*score, fitted["aivad-signed"], env={"VADCTL_CONFIG": str(config)}).exit_code == 0
    refused = vadctl(*score, fitted["aivad"], env={"VADCTL_CONFIG": str(config)})
    assert refused.exit_code == 2 and "unsigned" in refused.stderr
    config.write_text('[models]\nkey_file = "keys/missing.key"\n')
    missing = vadctl(*score, fitted["aivad-signed"], env={"VADCTL_CONFIG": str(config)})
    assert missing.exit_code == 2 and "missing.key" in missing.stderr


def test_the_whole_signature_is_compared_not_a_prefix():
    from vadctl.models import signing

    key, digest = b"key-one", "ab" * 32
    good = signing.signature(key, digest)
    assert signing.check(Path("m"), key, digest, good) is None
    last = good[:-1] + ("0" if good[-1] != "0" else "1")  # only the final hex digit differs
    first = ("0" if good[0] != "0" else "1") + good[1:]
    for forged in (last, first, good[:32], good + "0"):
        assert "another key" in signing.check(Path("m"), key, digest, forged), forged
