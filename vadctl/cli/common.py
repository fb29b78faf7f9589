"""What every command shares: consoles, one-line errors, number formatting."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vadctl import defaults
from vadctl.errors import VadctlError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_PARTIAL = 1  # the job ran, but some inputs failed (listed)
EXIT_ERROR = 2  # the job could not run: bad arguments, missing store, ...


StoreOption = typer.Option(
    None, "--store", "-s", help="Feature store path [default: $VADCTL_STORE or stores/default.zarr]", show_default=False
)


def store_path(value: Path | None) -> Path:
    return defaults.store_path(value)


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def one_line_errors(fn: F) -> F:
    """Turn library errors into `error: <message>` on stderr and a non-zero exit, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VadctlError as error:
            raise fail(str(error)) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: nothing half-written reads as complete; rerun to finish")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def parse_feature_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """['velocity.n_bins=4', 'flow.preset=fast'] → {'velocity': {'n_bins': 4}, 'flow': {'preset': 'fast'}}."""
    from vadctl.api import feature_params

    return feature_params(items)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60)} s"
