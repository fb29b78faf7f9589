"""What every command shares: consoles, one-line errors, number formatting."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vadctl import defaults
from vadctl.errors import VadctlError

# Imported inside the functions that use them: the API and the stages below it (importing this module stays cheap).

try:  # typer ≥ 0.2x runs without click; where click is installed, its own exits pass through too
    import click

    _PASS_THROUGH: tuple[type[BaseException], ...] = (
        click.exceptions.Exit,
        click.exceptions.Abort,
        click.ClickException,
    )
except ImportError:
    _PASS_THROUGH = ()

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_PARTIAL = 1  # the job ran, but some inputs failed (listed)
EXIT_ERROR = 2  # the job could not run: bad arguments, missing store, unreadable files, ...
EXIT_BUG = 3  # an unexpected error (a bug in vadctl or a plug-in): one line; --debug shows the traceback
DEBUG_ENV = "VADCTL_DEBUG"
_debug = False


StoreOption = typer.Option(
    None, "--store", "-s", help="Feature store path [default: $VADCTL_STORE or stores/default.zarr]", show_default=False
)


def is_stdout(path: Path | str | None) -> bool:
    """'-' as a path means standard output (for --out and --json paths)."""
    return path is not None and str(path) == "-"


def store_path(value: Path | None) -> Path:
    return defaults.store_path(value)


def set_debug(value: bool) -> None:
    global _debug
    _debug = bool(value)


def debug_enabled() -> bool:
    """`vadctl --debug …` or VADCTL_DEBUG=1: show tracebacks behind one-line errors."""
    return _debug or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    line = " ".join(str(message).split())  # one line, whatever the message held
    err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
    return typer.Exit(code)


def os_error_text(error: OSError) -> str:
    """'PATH: what went wrong' for a file-system error (permissions, a file where a folder must be, ...)."""
    what = error.strerror or str(error) or type(error).__name__
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    return f"{' → '.join(paths)}: {what}" if paths else what


def one_line_errors(fn: F) -> F:
    """Turn every error into `error: <one line>` on stderr and a non-zero exit: library errors and
    file-system errors exit 2, anything unexpected 3. `--debug` (VADCTL_DEBUG=1) adds the traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, *_PASS_THROUGH):
            raise
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]: nothing half-written reads as complete; rerun to finish")
            raise typer.Exit(130) from None
        except VadctlError as error:
            _traceback()
            raise fail(str(error)) from None
        except OSError as error:
            _traceback()
            raise fail(os_error_text(error)) from None
        except Exception as error:
            _traceback()
            hint = "" if debug_enabled() else f" (rerun with --debug or {DEBUG_ENV}=1 for the traceback)"
            raise fail(f"unexpected error: {type(error).__name__}: {error}{hint}", EXIT_BUG) from None

    return wrapper  # type: ignore[return-value]


def _traceback() -> None:
    if debug_enabled():
        err.print_exception()


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
