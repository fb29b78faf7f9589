"""`vadctl weights`: every featurizer's weight file, whether it is found here, and its checksum."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from vadctl.cli.common import one_line_errors, out, parse_feature_params

# Imported inside the functions that use them: weight files and featurizers (importing this module stays cheap).

STYLE = {"found": "green", "missing": "red", "unusable": "red", "bundled": "green", "no weights": "dim"}


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def weights(
        features: str | None = typer.Option(
            None, help="Comma-separated featurizers to check [default: all, with every weighted backend]."
        ),
        param: list[str] = typer.Option([], "--param", "-p", help="Featurizer parameter FEATURE.PARAM=VALUE."),
        weight: list[str] = typer.Option([], "--weights", "-w", help="Weight file KEY=PATH, as for extract."),
        verify: bool = typer.Option(True, help="Check found files hold the model's tensors (needs the extras)."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    ) -> None:
        """Where each featurizer's weights are looked for, which are found, and their sha256.

        vadctl never downloads: put files in the weights folder under the names listed, name them in
        the config file's [weights] table, or pass --weights KEY=PATH to `vadctl extract`.
        """
        from vadctl.backbones.weights import WeightResolver, parse_weight_options
        from vadctl.features import registry
        from vadctl.features.weights_survey import survey

        resolver = WeightResolver(explicit=parse_weight_options(weight))
        params = parse_feature_params(param)
        wanted = None
        if features is not None or params:
            names = registry.parse_names(features) if features else sorted(params)
            wanted = [(name, params.get(name, {})) for name in names]
        rows = survey(resolver, wanted, verify=verify)
        if as_json:
            out.print_json(
                data={
                    "weights_dir": str(resolver.folder),
                    "config": str(resolver.config),
                    "features": [row.to_dict() for row in rows],
                }
            )
            return
        out.print(f"weights folder: {resolver.folder}  ($VADCTL_WEIGHTS_DIR)", markup=False)
        out.print(f'config file:    {resolver.config}  ($VADCTL_CONFIG, [weights] KEY = "PATH")', markup=False)
        table = Table(title_justify="left")
        for column in ("feature", "key", "expected file", "status", "found at", "sha256"):
            table.add_column(column, overflow="fold", no_wrap=column in ("status", "sha256"))
        for row in rows:
            style = STYLE.get(row.status, "")
            status = f"[{style}]{row.status}[/]" if style else row.status
            where = escape(f"{row.path} ({row.origin})" if row.path else (row.problem or ""))
            if row.path and row.problem:
                where += f"\n[red]{escape(row.problem)}[/]"
            cells = (escape(row.label), escape(row.key or "–"), escape(row.expected))
            table.add_row(*cells, status, where, row.sha256 or "–")
        out.print(table)
