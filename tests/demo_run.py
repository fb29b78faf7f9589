"""`vadctl demo` run once per test session, as a user runs it (the CLI, default 120-frame videos): the
demo test checks its output and rerun, the review page's browser test opens the page it wrote."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from vadctl.cli import app

_cache: dict[str, DemoRun] = {}


@dataclass
class DemoRun:
    folder: Path
    store: Path
    args: list[str]
    output: str


def demo_run(factory) -> DemoRun:
    if "demo" not in _cache:
        root = factory.mktemp("demo")
        folder, store = root / "demo", root / "default.zarr"
        args = ["demo", "--folder", str(folder), "--store", str(store), "-q"]
        result = CliRunner().invoke(app, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        _cache["demo"] = DemoRun(folder, store, args, result.output)
    return _cache["demo"]
