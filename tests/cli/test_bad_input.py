"""Bad input on every command: one line naming the option or file and the problem, exit 2, nothing
created, nothing lost; `--debug` (or VADCTL_DEBUG=1) shows the traceback when wanted."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from snapshots import assert_same, snapshot
from typer.testing import CliRunner
from videos import make_video

from vadctl.cli import app
from vadctl.store import FeatureStore

runner = CliRunner()


def vadctl(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def one_line_error(result, *words: str, code: int = 2) -> str:
    """The single `error:` line of a failed command (no traceback), holding `words`."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad_input") / "videos"
    make_video(root / "a.avi", 12, seed=1)
    make_video(root / "b.avi", 12, seed=2)
    return root


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("--window", "0", "--window"),
        ("--window", "-5", "--window"),
        ("--wait", "-1", "--wait"),
        ("--wait", "nan", "--wait"),
        ("--clip-len", "0", "--clip-len"),
        ("--clip-stride", "-1", "--clip-stride"),
        ("--frame-step", "0", "--frame-step"),
        ("-p", "velocity.n_bins=2.5", "velocity.n_bins"),
        ("-p", "velocity.n_bins=abc", "velocity.n_bins"),
        ("-p", "flow.store_scale=big", "flow.store_scale"),
        ("--split", "a b", "split"),
        ("--resize", "0x5", "--resize"),
    ],
)
def test_extract_checks_every_option_before_any_work(videos: Path, tmp_path: Path, option, value, named):
    store = tmp_path / "s.zarr"
    result = vadctl("extract", videos, "--store", store, option, value)
    one_line_error(result, named)
    assert not store.exists() and not Path(f"{store}.vadctl").exists()  # not even an empty store


def test_wait_is_reported_as_given(videos: Path, tmp_path: Path):
    store = tmp_path / "s.zarr"
    assert vadctl("extract", videos / "a.avi", "--store", store, "--features", "regions").exit_code == 0
    lock = FeatureStore(store).video_lock("train", "a")
    with lock:  # another run holds the video
        result = vadctl(
            "extract", videos / "a.avi", "--store", store, "--features", "regions", "--force", "--wait", "0.5"
        )
    assert result.exit_code == 1
    assert "locked by another process for over 0.5 s" in result.stderr


@pytest.fixture(scope="module")
def fitted(model_store, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bad_fit")
    model = out / "aivad.safetensors"
    fit = vadctl("fit", "-m", "aivad", "-s", model_store["store"], "-o", model, "-p", "n_folds=3", "-q")
    assert fit.exit_code == 0, fit.output
    scores = out / "scores.parquet"
    assert vadctl("score", "-m", model, "-s", model_store["store"], "--split", "fast", "-o", scores).exit_code == 0
    (out / "a_file").write_text("x")
    (out / "a_folder.csv").mkdir()
    labels = {
        "empty.csv": "",
        "header_only.csv": "video,frame,label\n",
        "string_frame.csv": "video,frame,label\nf0,one,1\n",
        "fraction.csv": "video,frame,label\n" + "".join(f"f0,{t},{0.7 if t == 5 else 0}\n" for t in range(40)),
    }
    for name, text in labels.items():
        (out / name).write_text(text)
    return {"out": out, "model": model, "scores": scores, **model_store}


def _cases(f: dict) -> list[tuple[list, str]]:
    out, store, model, scores = f["out"], f["store"], f["model"], f["scores"]
    fit = ["fit", "-m", "aivad", "-s", store, "-o", out / "new.safetensors"]
    score = ["score", "-m", model, "-s", store, "--split", "fast"]
    ev = ["eval", "--scores", scores, "--labels", f["labels"]]
    return [
        ([*fit, "--validation-fraction", "2"], "--validation-fraction"),
        ([*fit, "--checkpoint-every", "0"], "--checkpoint-every"),
        ([*fit, "--seed", "-1"], "--seed"),
        ([*fit, "--epochs", "0"], "--epochs"),
        ([*fit, "--threshold", "sigma:-1"], "sigma:-1"),
        ([*fit, "--threshold", "sigma:nan"], "sigma:nan"),
        ([*fit, "-p", "n_velocity_bins=abc"], "aivad.n_velocity_bins"),
        ([*fit, "--split", "../x"], "split"),
        (["fit", "-m", "aivad", "-s", store, "-o", out / "a_file" / "m.safetensors"], "is a file, not a folder"),
        (["fit", "-m", "aivad", "-s", store, "-o", out / "a_folder.csv"], "is a folder"),
        (["fit", "-m", "aivad", "-s", out / "a_file", "-o", out / "m.safetensors"], "no feature store"),
        ([*score, "-o", out / "a_file" / "s.parquet"], "is a file, not a folder"),
        ([*score, "-o", out / "a_folder.csv"], "is a folder"),
        ([*score, "-o", out / "s.parquet", "--regions-out", out / "a_file" / "r.parquet"], "--regions-out"),
        ([*score, "-o", out / "s.parquet", "--videos", "./.."], "video id"),
        ([*score, "-o", out / "s.parquet", "--threshold", "percentile:101"], "percentile:101"),
        (["score", "-m", out / "a_folder.csv", "-s", store, "-o", out / "s.parquet"], "is a folder"),
        (["score", "-m", out / "missing.safetensors", "-s", store, "-o", out / "s.parquet"], "no such model file"),
        ([*ev, "--json", out / "a_file" / "m.json"], "--json"),
        ([*ev, "--json", out / "a_folder.csv"], "--json"),
        ([*ev, "--plots", out / "a_file"], "--plots"),
        (["eval", "--scores", scores, "--labels", out / "empty.csv"], "empty file"),
        (["eval", "--scores", scores, "--labels", out / "header_only.csv"], "no rows"),
        (["eval", "--scores", scores, "--labels", out / "string_frame.csv"], "frame 'one'"),
        (["eval", "--scores", scores, "--labels", out / "fraction.csv"], "label 0.7 must be 0 or 1"),
        (["eval", "--scores", scores, "--labels", out / "a_folder.csv"], "is a folder"),
        (["eval", "--scores", out / "a_folder.csv", "--labels", f["labels"]], "is a folder"),
        (["eval", "--scores", out / "a_file", "--labels", f["labels"]], "cannot read as Parquet"),
        (["export", "-m", model, "--parity-batch", "0"], "--parity-batch"),
        (["models", "--file", out / "a_folder.csv"], "is a folder"),
        (["store", "info", out / "a_file"], "no feature store"),
        (["store", "verify", out / "a_folder.csv"], "no feature store"),
    ]


def test_fit_score_eval_export_refuse_bad_input_in_one_line(fitted):
    before = sorted(p.name for p in fitted["out"].iterdir())
    for args, named in _cases(fitted):
        one_line_error(vadctl(*args), named)
    assert sorted(p.name for p in fitted["out"].iterdir()) == before  # nothing written anywhere


def test_debug_shows_the_traceback_behind_the_line(fitted):
    args = ["eval", "--scores", fitted["scores"], "--labels", fitted["out"] / "fraction.csv"]
    for result in (vadctl("--debug", *args), vadctl(*args, env={"VADCTL_DEBUG": "1"})):
        assert result.exit_code == 2
        assert "Traceback" in result.stderr and "error: " in result.stderr
    one_line_error(vadctl(*args), "label 0.7")


def test_store_path_under_a_file_or_in_proc_is_one_line(videos: Path, tmp_path: Path):
    (tmp_path / "a_file").write_text("x")
    for store in (tmp_path / "a_file" / "s.zarr", Path("/proc/vadctl-test.zarr"), tmp_path / "a_file"):
        one_line_error(vadctl("extract", videos, "--store", store, "--features", "regions"), str(store))
    assert (tmp_path / "a_file").read_text() == "x"


def _read_only(command: list[str], folder: Path) -> list[str] | None:
    """`command` run where `folder` is read-only: by permissions for a normal user, by a read-only
    bind mount for root (who ignores permissions); None where neither is possible."""
    if os.geteuid() != 0:
        return command
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        return None
    script = f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"'
    return ["unshare", "--mount", "sh", "-c", script, "sh", *command]


@pytest.mark.parametrize("which", ["store", "locks"])
def test_a_read_only_store_is_read_and_refuses_writes_in_one_line(videos: Path, tmp_path: Path, which: str):
    store = tmp_path / "ro" / "s.zarr"
    assert vadctl("extract", videos, "--store", store, "--features", "regions").exit_code == 0
    before = snapshot(store)
    folder = store.parent if which == "store" else Path(f"{store}.vadctl")  # all of it, or only its lock folder
    base = [sys.executable, "-m", "vadctl"]
    extract = _read_only(
        [*base, "extract", str(videos), "--store", str(store), "--features", "regions", "--force"], folder
    )
    if extract is None:
        pytest.skip("cannot make a read-only folder here (root without mount namespaces)")
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    try:
        done = subprocess.run(extract, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "read-only" in lines[0] and "Traceback" not in done.stderr
        verify = _read_only([*base, "store", "verify", str(store)], folder)
        info = subprocess.run(verify, capture_output=True, text=True, timeout=120)
        assert info.returncode == 0 and "intact" in info.stdout, info.stderr
    finally:
        if os.geteuid() != 0:
            for path in [folder, *folder.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)
    assert_same(snapshot(store), before)


def test_a_missing_config_file_named_by_the_environment_is_refused_by_every_command(fitted, tmp_path):
    """$VADCTL_CONFIG pointing nowhere is a one-line error (exit 2) for score as for run, never "no key"."""
    missing = tmp_path / "nope.toml"
    env = {"VADCTL_CONFIG": str(missing)}
    score = [
        "score",
        "-m",
        str(fitted["model"]),
        "-s",
        str(fitted["store"]),
        "--split",
        "fast",
        "-o",
        str(tmp_path / "x"),
    ]
    for command in (score, ["weights"]):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 2, (command, result.output)
        assert f"{missing}: config file named by $VADCTL_CONFIG does not exist" in result.stderr, result.stderr
