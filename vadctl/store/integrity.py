"""What a committed entry must hold, and checking that it still does.

At commit, every file of an entry (each array's metadata and shard or chunk files) is listed with
its size and a hash: the manifest, kept in the entry group's attributes, its digest in the video record.
The record also keeps every file's size, so the cheap check is one stat per file (a deleted or
truncated shard fails it) and reads no listing: planning a nightly run makes it for every entry of
every video. Records written before sizes were kept hold, per array, the file count and total bytes: for
them the cheap check is one directory listing per array. The deep check re-hashes every file
against the manifest (flipped bytes, a swapped file, a shard index rewritten); reads meanwhile
check each inner chunk's crc32c and each shard index's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

from vadctl.common.specs import canonical_json

MANIFEST_KEY = "vadctl_manifest"
METADATA = "zarr.json"


def _hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=8)
    with path.open("rb") as handle:
        while block := handle.read(4 * 1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def array_files(array_dir: Path) -> dict[str, int]:
    """Relative path → size of an array's files (metadata and chunks; Zarr's temporary files
    skipped). Chunks are flat files here; stores from before vadctl 0.2 nest them in folders."""
    return _files(array_dir) or {}


def _files(array_dir: Path | str) -> dict[str, int] | None:
    """`array_files`, or None when `array_dir` is not a folder. One scandir per folder and no path
    arithmetic: planning runs this for every array of every entry."""
    files: dict[str, int] = {}
    pending = [(os.fspath(array_dir), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            listing = os.scandir(folder)
        except OSError:
            if not prefix:
                return None
            continue
        with listing:
            for item in listing:
                if item.is_dir():
                    if not item.is_symlink():
                        pending.append((item.path, f"{prefix}{item.name}/"))
                elif not item.name.endswith(".partial"):
                    files[prefix + item.name] = item.stat().st_size
    return files


def arrays_in(group_dir: Path) -> list[str]:
    """Arrays directly below a group folder (folders with Zarr metadata)."""
    return sorted(
        item.name for item in os.scandir(group_dir) if item.is_dir() and (Path(item.path) / METADATA).is_file()
    )


def manifest(group_dir: Path, arrays: list[str] | None = None) -> dict[str, list]:
    """'array/file' → [size, hash] for every file of the arrays below a folder (default: all)."""
    found = {}
    for array in arrays_in(group_dir) if arrays is None else arrays:
        for name, size in sorted(array_files(group_dir / array).items()):
            found[f"{array}/{name}"] = [size, _hash(group_dir / array / name)]
    return found


def array_summary(files: Mapping[str, list]) -> dict[str, list[int]]:
    """array → [file count, total bytes], from a manifest."""
    summary: dict[str, list[int]] = {}
    for path, (size, _) in files.items():
        array = path.split("/", 1)[0]
        count, total = summary.get(array, [0, 0])
        summary[array] = [count + 1, total + size]
    return summary


def sizes_of(files: Mapping[str, list]) -> dict[str, int]:
    """'array/file' → size, from a manifest: what the cheap check compares."""
    return {path: int(size) for path, (size, _) in files.items()}


def sizes_problem(group_dir: Path | str, sizes: Mapping[str, int]) -> str | None:
    """None when every file recorded at commit is there with its size, else what is wrong (one
    stat per file; a file added since is no damage to what was written and is not looked for)."""
    base = os.fspath(group_dir)
    for path, size in sizes.items():
        try:
            found = os.stat(os.path.join(base, path)).st_size
        except FileNotFoundError:
            if not os.path.isdir(base):
                return "its data folder is missing"
            array = path.split("/", 1)[0]
            return f"array {array}: {path} is missing (missing chunks)"
        except OSError as error:
            return f"{path} cannot be read: {error.strerror or error}"
        if found != size:
            return f"{path} holds {found} bytes, {size} were written (truncated or altered)"
    return None


def digest(files: Mapping[str, list]) -> str:
    return hashlib.sha256(canonical_json(files).encode()).hexdigest()[:16]


def cheap_problem(group_dir: Path | str, summary: Mapping[str, list[int]]) -> str | None:
    """None when every array holds the recorded number of files and bytes, else what is wrong."""
    if not summary and not os.path.isdir(group_dir):
        return "its data folder is missing"
    for array, (count, total) in sorted(summary.items()):
        files = _files(os.path.join(group_dir, array))
        if files is None:
            return "its data folder is missing" if not os.path.isdir(group_dir) else f"array {array} is missing"
        if len(files) != count:
            return f"array {array} has {len(files)} of its {count} files (missing chunks)"
        if sum(files.values()) != total:
            return f"array {array} holds {sum(files.values())} bytes, {total} were written (truncated or altered)"
    return None


def deep_problem(group_dir: Path, files: Mapping[str, list], recorded_digest: str | None) -> str | None:
    """None when every file hashes as recorded at commit, else the first that does not."""
    if recorded_digest is not None and digest(files) != recorded_digest:
        return "its manifest does not match the digest in the video record"
    for path, (size, expected) in sorted(files.items()):
        target = group_dir / path
        if not target.is_file():
            return f"{path} is missing"
        if target.stat().st_size != size:
            return f"{path} has {target.stat().st_size} bytes, {size} were written"
        if _hash(target) != expected:
            return f"{path} does not hash as written (corrupt bytes)"
    return None
