"""The README's Python API example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


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
