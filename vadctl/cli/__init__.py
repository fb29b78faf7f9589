"""The `vadctl` command line: a thin typer layer over the library (argument handling and printing)."""

from __future__ import annotations

import typer

from vadctl import __version__
from vadctl.cli import (
    demo_cmd,
    eval_cmd,
    events_cmd,
    export_cmd,
    extract_cmd,
    fit_cmd,
    infer_cmd,
    review_cmd,
    run_cmd,
    score_cmd,
    store_cmd,
    weights_cmd,
)
from vadctl.cli.common import DEBUG_ENV, out, set_debug

app = typer.Typer(
    name="vadctl",
    help="Offline batch video anomaly detection over a cached Zarr feature store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
)
app.add_typer(store_cmd.store_app, name="store")
extract_cmd.register(app)
fit_cmd.register(app)
score_cmd.register(app)
eval_cmd.register(app)
run_cmd.register(app)
events_cmd.register(app)
review_cmd.register(app)
infer_cmd.register(app)
export_cmd.register(app)
weights_cmd.register(app)
demo_cmd.register(app)


def _version(value: bool) -> None:
    if value:
        out.print(f"vadctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    debug: bool = typer.Option(
        False, "--debug", help=f"Show the traceback behind an error (also ${DEBUG_ENV}=1).", show_default=False
    ),
) -> None:
    """Offline batch video anomaly detection over a cached Zarr feature store."""
    set_debug(debug)


def main() -> None:
    app()
