"""What every command shares: consoles, one-line errors, number formatting."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from vadctl.errors import UsageError, VadctlError

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
F = TypeVar("F", bound=Callable[..., Any])

EXIT_PARTIAL = 1  # the job ran, but some inputs failed (listed)
EXIT_ERROR = 2  # the job could not run: bad arguments, missing store, ...


DEFAULT_STORE = Path("stores/default.zarr")


def default_store() -> Path:
    return Path(os.environ.get("VADCTL_STORE", DEFAULT_STORE))


StoreOption = typer.Option(
    None, "--store", "-s", help="Feature store path [default: $VADCTL_STORE or stores/default.zarr]", show_default=False
)


def store_path(value: Path | None) -> Path:
    return value if value is not None else default_store()


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
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


def parse_value(text: str) -> Any:
    """Command-line parameter values: JSON when it parses (numbers, booleans, lists), else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: list[str], option: str, example: str) -> dict[str, Any]:
    """['k=v', ...] → {'k': parsed v}."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: expected KEY=VALUE (e.g. {example})")
        result[key.strip()] = parse_value(value)
    return result


def parse_feature_params(items: list[str]) -> dict[str, dict[str, Any]]:
    """['velocity.n_bins=4', 'flow.preset=fast'] → {'velocity': {'n_bins': 4}, 'flow': {'preset': 'fast'}}."""
    from vadctl.features import registry

    params: dict[str, dict[str, Any]] = {}
    for key, value in parse_assignments(items, "--param", "velocity.n_bins=4").items():
        name, dot, param = key.partition(".")
        if not dot or not name or not param:
            raise UsageError(f"--param {key}={value}: expected FEATURE.PARAM=VALUE (e.g. velocity.n_bins=4)")
        registry.featurizer_class(name)
        params.setdefault(name, {})[param] = value
    return params


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
