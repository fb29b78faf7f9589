"""`vadctl export`: a fitted neural model's scoring network as ONNX, with a parity check against torch."""

from __future__ import annotations

from pathlib import Path

import typer

from vadctl.cli.common import human_seconds, one_line_errors, out

# Imported inside the functions that use them: model files and the ONNX exporter (importing this module stays cheap).


def register(app: typer.Typer) -> None:
    @app.command()
    @one_line_errors
    def export(
        model: Path = typer.Option(
            ..., "--model", "-m", help="Fitted model file (a model that exports to ONNX; see `vadctl models`)."
        ),
        onnx: Path | None = typer.Option(
            None, "--onnx", help="ONNX file to write [default: the model file with suffix .onnx]."
        ),
        parity_batch: int = typer.Option(4, help="Inputs compared between torch and onnxruntime."),
    ) -> None:
        """Write the model's network as ONNX and report the largest torch–onnxruntime difference."""
        from vadctl.models.files import load_model
        from vadctl.scoring.onnx import default_onnx_path, export_onnx

        loaded = load_model(model)
        report = export_onnx(loaded.model, onnx or default_onnx_path(model), parity_batch)
        out.print(
            f"exported {loaded.model.name} to {report.path} in {human_seconds(report.seconds)}; parity with torch "
            f"on {report.parity_inputs} inputs: max abs diff {report.max_abs_diff:.3g} "
            f"(outputs up to {report.output_scale:.3g})",
            markup=False,
        )
        out.print(f"score with it: vadctl score -m {model} --backend onnx --onnx {report.path}", markup=False)
