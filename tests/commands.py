"""Command lines of the installed CLI, for tests that run vadctl as a real process (kills, concurrency)."""

from __future__ import annotations

import sys
from pathlib import Path


def extract_cmd(root: Path, store: Path, *extra: str) -> list[str]:
    """`python -m vadctl extract ROOT --store STORE --window 8 --json …`: small windows, so a run can be
    killed between commits, and a JSON report to check."""
    command = [sys.executable, "-m", "vadctl", "extract", str(root), "--store", str(store)]
    return [*command, "--window", "8", "--json", *extra]
