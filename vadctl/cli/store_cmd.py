"""`vadctl store info`: what a store holds: splits, videos, features and their sizes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from vadctl.cli.common import (
    EXIT_PARTIAL,
    StoreOption,
    err,
    human_bytes,
    human_seconds,
    one_line_errors,
    out,
    store_path,
)

store_app = typer.Typer(help="Inspect, verify and maintain feature stores.", no_args_is_help=True)
PathArgument = typer.Argument(None, help="Store path [default: $VADCTL_STORE or stores/default.zarr]")


def _short_params(params: dict) -> str:
    from vadctl.common.specs import canonical_json

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
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Splits, videos, feature entries and sizes of a store."""
    from vadctl.store import FeatureStore

    feature_store = FeatureStore(path or store_path(store), read_only=True)
    summary = describe(feature_store, videos)
    if as_json:
        out.print_json(data=summary, default=str)
        return
    meta = feature_store.info
    out.print(
        f"[bold]{escape(str(feature_store.path))}[/]  schema {meta['schema']}, created by vadctl "
        f"{meta.get('created_by', '?')} at {meta.get('created_at', '?')}, "
        f"{human_bytes(summary['bytes'])} on disk"
    )
    if not summary["splits"]:
        out.print("empty: no videos yet")
        return
    overview = Table(title="splits", title_justify="left")
    for column in ("split", "videos", "failed", "frames", "scenes", "size"):
        overview.add_column(column, justify="right" if column not in ("split", "scenes") else "left")
    features = Table(title="features", title_justify="left")
    for column in ("split", "feature", "videos", "rows", "size", "parameters"):
        features.add_column(column, justify="right" if column in ("videos", "rows", "size") else "left")
    for split in summary["splits"]:
        overview.add_row(
            escape(split["split"]),
            str(split["videos"]),
            str(split["failed"]),
            str(split["frames"]),
            escape(", ".join(split["scenes"])) or "–",
            human_bytes(split["bytes"]),
        )
        for entry in split["features"]:
            features.add_row(
                escape(split["split"]),
                escape(entry["key"]),
                f"{entry['videos']}/{split['videos']}",
                str(entry["rows"]),
                human_bytes(entry["bytes"]),
                escape(_short_params(entry["params"])),
            )
    out.print(overview)
    out.print(features)
    if videos:
        table = Table(title="videos", title_justify="left")
        for column in ("split", "video", "frames", "fps", "size", "scene", "features", "status"):
            table.add_column(column)
        for v in summary["videos"]:
            status = _status_text(v)
            table.add_row(
                escape(v["split"]),
                escape(v["video"]),
                str(v["frames"]),
                f"{v['fps']:.1f}",
                f"{v['width']}x{v['height']}",
                escape(v["scene"] or "–"),
                str(len(v["features"])),
                status,
            )
        out.print(table)


def _status_text(video: dict) -> str:
    """A video's status in `store info --videos`: ok, truncated (frames kept) or failed, with why."""
    if video["status"] == "ok":
        return "ok"
    if video["status"] == "truncated":
        return f"[yellow]truncated[/]: {escape(str(video['error']))}"
    kind = video.get("failure") or "permanent"
    attempts = video.get("attempts") or 1
    return f"[red]failed[/] ({kind}, {attempts} attempt{'s' if attempts > 1 else ''}): {escape(str(video['error']))}"


def describe(feature_store, with_videos: bool) -> dict:
    """What `store info` shows, as plain data (also its --json output)."""
    summary: dict = {
        "path": str(feature_store.path),
        **feature_store.info,
        "bytes": feature_store.disk_bytes(),
        "splits": [],
    }
    if with_videos:
        summary["videos"] = []
    for split in feature_store.splits():
        records = feature_store.videos(split)
        entries: dict[str, dict] = {}
        for record in records:
            for key, entry in record.features.items():
                agg = entries.setdefault(
                    key, {"key": key, "videos": 0, "rows": 0, "bytes": 0, "params": entry["params"]}
                )
                agg["videos"] += 1
                agg["rows"] += int(entry.get("rows", entry.get("index", 0)))
                agg["bytes"] += feature_store.disk_bytes(split, record.video_id, key)
            if with_videos:
                summary["videos"].append(
                    {
                        "split": split,
                        "video": record.video_id,
                        "frames": record.n_frames,
                        "fps": record.fps,
                        "width": record.width,
                        "height": record.height,
                        "scene": record.scene,
                        "features": sorted(record.features),
                        "status": record.status,
                        "error": record.error,
                        "failure": record.failure_kind,  # permanent or transient (retried by later runs)
                        "attempts": max(record.attempts, 1) if record.status == "failed" else 0,
                        "source": record.source,
                        "decoder": record.decoder,  # decord or pyav (None: images, or before the choice)
                    }
                )
        summary["splits"].append(
            {
                "split": split,
                "videos": len(records),
                "failed": sum(r.status == "failed" for r in records),
                "frames": sum(r.n_frames for r in records),
                "scenes": sorted({r.scene for r in records if r.scene}),
                "bytes": feature_store.disk_bytes(split),
                "features": [entries[k] for k in sorted(entries)],
            }
        )
    return summary


@store_app.command("verify")
@one_line_errors
def verify(
    path: Path | None = PathArgument,
    store: Path | None = StoreOption,
    deep: bool = typer.Option(False, help="Re-hash every file (reads all data) instead of checking sizes."),
    forget_damaged: bool = typer.Option(
        False, help="Take damaged entries out of use (quarantined, not deleted) so `vadctl extract` redoes them."
    ),
    sources: bool = typer.Option(
        False,
        "--sources",
        help="Also re-hash every source video in full (reads the whole archive) and mark changed ones for "
        "re-extraction.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Check every committed entry against what was written; exit 1 when damage is found.

    The cheap check (default) compares each array's file count and bytes with what was committed;
    --deep re-hashes every file. Damage found by the cheap check is redone by the next `vadctl
    extract`; damage only --deep sees needs --forget-damaged first. --sources also re-hashes each
    source in full: a source whose content changed (even with size and mtime kept) is marked,
    and the next `vadctl extract` redoes it."""
    import time

    from vadctl import api

    started = time.perf_counter()
    where = path or store_path(store)
    checked, problems = api.verify(where, deep=deep, forget_damaged=forget_damaged)
    checks = api.verify_sources(where) if sources else []
    changed = [c for c in checks if c.status == "changed"]
    seconds = time.perf_counter() - started
    if as_json:
        out.print_json(
            data={
                "store": str(where),
                "deep": deep,
                "entries": checked,
                "seconds": round(seconds, 3),
                "problems": [p.to_dict() for p in problems],
            }
            | ({"sources": [c.to_dict() for c in checks]} if sources else {})
        )
    else:
        if sources:
            _print_sources(checks)
        kind = "deep (every file re-hashed)" if deep else "cheap (file counts and sizes)"
        out.print(f"{escape(str(where))}: {checked} entries checked, {kind}, in {human_seconds(seconds)}")
        for problem in problems:
            kind = "[yellow]index[/]" if problem.entry == "records index" else "[red]damaged[/]"
            err.print(f"{kind} {escape(str(problem))}", soft_wrap=True)
        if any(problem.entry != "records index" for problem in problems):
            err.print(
                "`vadctl extract` over the same videos redoes damaged entries (unreadable records are quarantined)"
            )
        else:
            out.print("[green]intact[/]")
    if problems or changed:
        raise typer.Exit(EXIT_PARTIAL)


def _print_sources(checks) -> None:
    """One line per source that is not plainly the same, then a count of each status."""
    from collections import Counter

    for check in checks:
        if check.status == "changed":
            err.print(f"[red]changed[/] {escape(str(check))}", soft_wrap=True)
        elif check.status != "same":
            out.print(f"{check.status} {escape(str(check))}", soft_wrap=True)
    counts = Counter(c.status for c in checks)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no videos"
    out.print(f"sources re-hashed in full: {escape(summary)}")


def _maintenance(report, where: Path, verb: str, as_json: bool) -> None:
    if as_json:
        out.print_json(data={"store": str(where), **report.to_dict()})
        return
    for removal in report.removals:
        done = "removed" if report.applied else "would remove"
        where = escape(f"{removal.split}/{removal.video}")
        out.print(f"{done} {where}: {escape(removal.what)} ({human_bytes(removal.bytes)})")
    for video in report.busy:
        err.print(f"[yellow]skipped[/] {escape(video)}: being written by another process")
    total = human_bytes(report.bytes)
    if report.applied:
        out.print(f"{verb}: {len(report.removals)} item(s), {total} freed")
    else:
        out.print(f"{verb} (dry run): {len(report.removals)} item(s), {total} would be freed; pass --yes to remove")


def _kept(report, as_json: bool) -> None:
    """What gc kept of the older entries, summed per entry key, and how to tell it more."""
    if as_json or not report.kept:
        return
    by_key: dict[str, list] = {}
    for kept in report.kept:
        by_key.setdefault(kept.key, []).append(kept)
    if not report.in_use_known:
        total = human_bytes(sum(k.bytes for k in report.kept))
        err.print(
            f"kept {len(report.kept)} older entr{'y' if len(report.kept) == 1 else 'ies'} ({total}) a model may "
            "need; name what is in use (--job JOB.toml, --keep-for MODEL, --results DIR) to remove those none needs",
            soft_wrap=True,
        )
        return
    for key, items in sorted(by_key.items()):
        why = items[0].why
        size = human_bytes(sum(k.bytes for k in items))
        out.print(f"kept {escape(key)} in {len(items)} video(s) ({size}): {escape(why)}", soft_wrap=True)


@store_app.command("gc")
@one_line_errors
def gc(
    path: Path | None = PathArgument,
    store: Path | None = StoreOption,
    keep_for: list[Path] = typer.Option(
        [], "--keep-for", help="A model file in use: its entries stay (repeat for several)."
    ),
    job: list[Path] = typer.Option(
        [], "--job", help="A job file of this store: its models, [extract] and recent results stay in use (repeat)."
    ),
    results: list[Path] = typer.Option(
        [], "--results", help="A results dataset: entries its models read in the last --days days stay (repeat)."
    ),
    days: int | None = typer.Option(None, "--days", help="How far back results count as in use [default: 30]."),
    yes: bool = typer.Option(False, "--yes", help="Remove (default: only list what would go)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Data no record refers to, the trash, and older entries no model in use needs (dry run by default).

    An older entry of a feature (other parameters) is removed only when gc is told what is in use
    (--job, --keep-for, --results) and none of it needs that entry; told nothing, gc keeps it."""
    from vadctl import api

    where = path or store_path(store)
    report = api.gc(where, apply=yes, keep_for=keep_for, jobs=job, results=results, days=days)
    _maintenance(report, where, "gc", as_json)
    _kept(report, as_json)


@store_app.command("prune")
@one_line_errors
def prune(
    path: Path | None = PathArgument,
    store: Path | None = StoreOption,
    missing_sources: bool = typer.Option(False, "--missing-sources", help="Forget videos whose source file is gone."),
    yes: bool = typer.Option(False, "--yes", help="Remove (default: only list what would go)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Forget videos that no longer exist (dry run by default)."""
    from vadctl import api
    from vadctl.errors import UsageError

    if not missing_sources:
        raise UsageError("vadctl store prune: say what to prune (--missing-sources)")
    where = path or store_path(store)
    _maintenance(api.prune(where, missing_sources=True, apply=yes), where, "prune", as_json)
