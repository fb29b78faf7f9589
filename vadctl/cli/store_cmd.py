"""`vadctl store info`: what a store holds: splits, videos, features and their sizes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vadctl.cli.common import StoreOption, human_bytes, one_line_errors, out, store_path

store_app = typer.Typer(help="Inspect feature stores.", no_args_is_help=True)


def _short_params(params: dict) -> str:
    from vadctl.specs import canonical_json

    shown = {k: v for k, v in params.items() if k not in ("decode", "upstream")}
    text = canonical_json(shown)[1:-1].replace('"', "")
    decode = params.get("decode") or {}
    if decode.get("width"):
        text += f", decode={decode['width']}x{decode.get('height') or '?'}"
    return text


@store_app.command("info")
@one_line_errors
def info(
    path: Path | None = typer.Argument(None, help="Store path [default: $VADCTL_STORE or stores/default.zarr]"),
    store: Path | None = StoreOption,
    videos: bool = typer.Option(False, "--videos", "-v", help="List every video."),
) -> None:
    """Splits, videos, feature entries and sizes of a store."""
    from vadctl.store import FeatureStore

    feature_store = FeatureStore(path or store_path(store), read_only=True)
    meta = feature_store.info
    out.print(
        f"[bold]{feature_store.path}[/]  schema {meta['schema']}, created by vadctl "
        f"{meta.get('created_by', '?')} at {meta.get('created_at', '?')}, "
        f"{human_bytes(feature_store.disk_bytes())} on disk"
    )
    splits = feature_store.splits()
    if not splits:
        out.print("empty: no videos yet")
        return
    overview = Table(title="splits", title_justify="left")
    for column in ("split", "videos", "failed", "frames", "scenes", "size"):
        overview.add_column(column, justify="right" if column not in ("split", "scenes") else "left")
    features = Table(title="features", title_justify="left")
    for column in ("split", "feature", "videos", "rows", "size", "parameters"):
        features.add_column(column, justify="right" if column in ("videos", "rows", "size") else "left")
    listing = []
    for split in splits:
        records = feature_store.videos(split)
        failed = [r for r in records if r.status == "failed"]
        scenes = sorted({r.scene for r in records if r.scene})
        overview.add_row(
            split,
            str(len(records)),
            str(len(failed)),
            str(sum(r.n_frames for r in records)),
            ", ".join(scenes) or "–",
            human_bytes(feature_store.disk_bytes(split)),
        )
        entries: dict[str, dict] = {}
        for record in records:
            for key, summary in record.features.items():
                agg = entries.setdefault(key, {"summary": summary, "videos": 0, "rows": 0, "bytes": 0})
                agg["videos"] += 1
                agg["rows"] += int(summary.get("rows", summary.get("index", 0)))
                agg["bytes"] += feature_store.disk_bytes(split, record.video_id, key)
            listing.append((split, record))
        for key in sorted(entries):
            agg = entries[key]
            features.add_row(
                split,
                key,
                f"{agg['videos']}/{len(records)}",
                str(agg["rows"]),
                human_bytes(agg["bytes"]),
                _short_params(agg["summary"]["params"]),
            )
    out.print(overview)
    out.print(features)
    if videos:
        table = Table(title="videos", title_justify="left")
        for column in ("split", "video", "frames", "fps", "size", "scene", "features", "status"):
            table.add_column(column)
        for split, record in listing:
            status = "ok" if record.status == "ok" else f"[red]failed[/]: {record.error}"
            table.add_row(
                split,
                record.video_id,
                str(record.n_frames),
                f"{record.fps:.1f}",
                f"{record.width}x{record.height}",
                record.scene or "–",
                str(len(record.features)),
                status,
            )
        out.print(table)
