"""Job files: every key checked before any work, one-line errors naming the file and key, paths
relative to the file, and [extract] following `api.extract`'s keywords."""

import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner
from videos import make_video

from vadctl import api
from vadctl.cli import app
from vadctl.errors import UsageError
from vadctl.nightly.jobfile import extract_keywords, load_job

runner = CliRunner()
GOOD = """\
store = "archive.zarr"
results = "out/results"
[[sources]]
root = "cam1"
[[models]]
path = "models/m.safetensors"
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "cam1").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.safetensors").write_bytes(b"")
    return tmp_path


def write(site: Path, text: str) -> Path:
    path = site / "job.toml"
    path.write_text(text)
    return path


def test_paths_are_relative_to_the_job_file_and_defaults_filled_in(site: Path, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    job = load_job(write(site, GOOD + '[extract]\nweights = { clip = "w/clip.safetensors" }\n'))
    assert (job.store, job.results, job.sources[0].root) == (site / "archive.zarr", site / "out/results", site / "cam1")
    assert job.models[0].path == site / "models/m.safetensors" and job.models[0].name == "m"
    assert job.models[0].splits == ("test",) and job.sources[0].split == "test" and job.name == "job"
    assert job.extract == {"weights": {"clip": site / "w/clip.safetensors"}} and job.log is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('store = "a"\nresults = \n', "invalid TOML"),
        (GOOD + "stor = 1\n", "unknown key 'stor'"),
        (GOOD.replace('store = "archive.zarr"\n', ""), "missing required key 'store'"),
        (GOOD + "[extract]\nworker = 2\n", "extract: unknown key 'worker'"),
        (GOOD + "[extract]\nforce = true\n", "extract.force: not allowed here"),
        (GOOD.replace('root = "cam1"', 'root = "cam2"'), "sources[1].root: "),
        (GOOD.replace('"models/m.safetensors"', '"models/gone.safetensors"'), "models[1].path: "),
        (GOOD + 'split = "te st"\n', "models[1]: unknown key 'split'"),
        (GOOD.replace('root = "cam1"', 'root = "cam1"\nsplit = "te st"'), "sources[1].split: split 'te st'"),
        (GOOD + 'threshold = "mad:3"\n', "models[1].threshold: threshold 'mad:3'"),
        (GOOD + 'name = "a/b"\n', "models[1].name: name 'a/b'"),
        (GOOD + '[[models]]\npath = "models/m.safetensors"\n', "models[2].name: 'm' is also the name of"),
        (GOOD + "[scoring]\npart_videos = 0\n", "scoring.part_videos: must be a whole number ≥ 1"),
        (GOOD + '[events]\nmin_len = "long"\n', "events.min_len: expected int, got str"),
        (GOOD.replace('root = "cam1"', 'root = "cam1"\nsplit = "train"'), "models[1].splits: no split to score"),
        ('store = "a"\nresults = "r"\n[sources]\nroot = "cam1"\n', "write [[sources]] (double brackets)"),
    ],
)
def test_bad_job_files_stop_before_any_work_with_one_line_and_exit_2(site: Path, text: str, message: str):
    path = write(site, text)
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and message in result.stderr and str(path) in result.stderr
    assert sorted(p.name for p in site.iterdir()) == ["cam1", "job.toml", "models"]  # nothing created


def test_a_missing_job_file_is_one_line_too(tmp_path: Path):
    result = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "no such job file" in result.stderr


def test_extract_keys_follow_the_recipe_so_a_new_keyword_is_a_job_key_at_once(site: Path, monkeypatch):
    from vadctl.nightly import runner

    assert set(extract_keywords()) == set(inspect.signature(api.extract).parameters) - {
        "roots",
        "store",
        "split",
        "scene",
        "progress",
        "force",
    }
    seen = {}
    real = runner.extract

    def extract_with_workers(*args, workers: int = 1, **kwargs):  # how the run is spread reaches the run
        seen["workers"] = workers
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "extract", extract_with_workers)
    make_video(site / "cam1" / "v.avi", 12)
    path = write(site, GOOD.replace('[[models]]\npath = "models/m.safetensors"\n', "") + "[extract]\nworkers = 3\n")
    assert load_job(path).extract == {"workers": 3}
    report = api.run(path)
    assert seen == {"workers": 3} and report.sources[0].extracted == 1
    with pytest.raises(UsageError, match="unknown key 'worker'"):
        load_job(write(site, GOOD + "[extract]\nworker = 3\n"))


@pytest.mark.parametrize("results", ['"archive.zarr"', '"archive.zarr/results"', '"./archive.zarr/../archive.zarr"'])
def test_results_in_the_store_folder_are_refused(site: Path, results: str):
    text = GOOD.replace('results = "out/results"', f"results = {results}")
    with pytest.raises(UsageError, match=r"job\.toml: results: .* is the store's folder or inside it"):
        load_job(write(site, text))


def test_results_beside_the_store_or_outside_the_job_folder_are_fine(site: Path, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("shared")
    job = load_job(write(site, GOOD.replace('results = "out/results"', f'results = "{elsewhere}/results"')))
    assert job.results == elsewhere / "results"
    job = load_job(write(site, GOOD.replace('results = "out/results"', 'results = "../results"')))
    assert job.results == site / ".." / "results"  # `..` is allowed: paths start at the job file's folder
