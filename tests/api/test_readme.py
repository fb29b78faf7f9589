"""The README's examples run as written: the Python API, and the nightly job from cron and systemd."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
from nightly import copy_archive

import vadctl

README = Path(__file__).resolve().parents[2] / "README.md"


def python_api_example() -> str:
    text = README.read_text()
    section = text.split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_python_api_example_runs_as_written(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_api_example(), "README.md (Python API)", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert "2 test videos extracted; 2 finished events" in printed
    micro = float(re.search(r"micro AUROC ([0-9.]+)", printed).group(1))
    assert micro > 0.6, printed  # well above chance on the demo's anomalies
    assert (tmp_path / "scores.regions.parquet").is_file()


def nightly_section() -> str:
    return README.read_text().split("## Nightly runs", 1)[1].split("\n## ", 1)[0]


def block(section: str, language: str) -> str:
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_nightly_job_from_cron_and_systemd_works_from_any_directory(nightly_archive: Path, tmp_path: Path, monkeypatch):
    section = nightly_section()
    site = copy_archive(nightly_archive, tmp_path / "srv").parent
    job = site / "nightly.toml"
    job.write_text(block(section, "toml"))  # the README's job file, verbatim
    home = tmp_path / "home"
    home.mkdir()
    installed = str(Path(sys.executable).with_name("vadctl"))
    cron_line = block(section, "cron").strip().splitlines()[-1]
    exec_start = re.search(r"^ExecStart=(.*)$", block(section, "ini"), re.M).group(1)
    env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(Path(vadctl.__file__).resolve().parents[1]),  # the vadctl under test
    }
    for command, cwd in ((cron_line.split(None, 5)[5], home), (exec_start, Path("/"))):
        command = command.replace("/opt/vadctl/.venv/bin/vadctl", installed).replace("/srv/vad/nightly.toml", str(job))
        done = subprocess.run(["/bin/sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout == "", done.stdout  # --quiet: cron mails nothing when all went well
    assert list(home.iterdir()) == []  # nothing landed in the working directory
    lines = [json.loads(line) for line in (site / "vadctl.log").read_text().splitlines()]
    finished = [line for line in lines if line["event"] == "run_finished"]
    assert [(f["scored"], f["exit_code"]) for f in finished] == [(4, 0), (0, 0)]  # the second run had nothing new
    monkeypatch.chdir(site)  # the reader examples use paths relative to the job's folder
    exec(compile(block(section, "python"), "README.md (results dataset)", "exec"), {"__name__": "readme"})
    events = duckdb.sql(block(section, "sql").rstrip().rstrip(";")).fetchall()
    assert {row[0] for row in events} == {"c1", "c2", "c3"}
