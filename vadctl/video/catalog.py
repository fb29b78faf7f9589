"""Find videos under roots, give each a stable id, and fingerprint it cheaply.

A video is a file with a video suffix, or a folder holding numbered image frames. Its id is its
path relative to the root it was found under, without the suffix (`test/01.mp4` under `.../test`
is `01`), so ids survive moving the archive. A fingerprint is (size, mtime) plus a hash of a few
sampled blocks: the quick part decides "unchanged" without reading the file, and the hash tells a
touched-but-identical file from a changed one.

Only regular files (and symlinks to them) are ever opened: a FIFO named `x.mp4` would block the
reader forever and a link to `/dev/zero` never ends, so anything else with a video suffix is listed
as skipped with its reason, as are broken links and folders that cannot be listed. Symlinked folders
are followed (archives are often spread over disks by links); each real folder is walked once per
root, so a link back up the tree (a loop) or a second link to a folder already walked is skipped
with its reason instead of being walked forever or yielding the same videos twice.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vadctl.common.checks import check_video_id
from vadctl.common.specs import Fingerprint
from vadctl.errors import UsageError

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
SAMPLE_BLOCK = 64 * 1024


@dataclass(frozen=True)
class VideoSource:
    """One video found under a root: a file, or a folder of numbered frames."""

    video_id: str
    path: Path
    is_frame_folder: bool = False

    def stat(self) -> tuple[int, int]:
        """(size in bytes, newest mtime in ns, of the folder too): the quick part of the fingerprint."""
        if not self.is_frame_folder:
            st = self.path.stat()
            return st.st_size, st.st_mtime_ns
        # the folder's own mtime moves when frames are added, removed or renamed (a reorder keeps sizes)
        size, mtime = 0, self.path.stat().st_mtime_ns
        for frame in frame_files(self.path):
            st = frame.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
        return size, mtime

    def fingerprint(self) -> Fingerprint:
        size, mtime = self.stat()
        return Fingerprint(size, mtime, self._sample_hash(size))

    def _sample_hash(self, size: int) -> str:
        digest = hashlib.sha256(str(size).encode())
        if self.is_frame_folder:
            frames = frame_files(self.path)
            digest.update("\n".join(f.name for f in frames).encode())
            for frame in frames[:1] + frames[-1:]:
                digest.update(_sample_blocks(frame))
        else:
            digest.update(_sample_blocks(self.path))
        return digest.hexdigest()

    def content_sha256(self) -> str:
        """sha256 of the whole content (a frame folder: each frame's name and bytes, in order).
        Reads every byte, unlike the fingerprint: what `vadctl store verify --sources` compares."""
        digest = hashlib.sha256()
        if self.is_frame_folder:
            for frame in frame_files(self.path):
                digest.update(f"{frame.name}\n{frame.stat().st_size}\n".encode())
                _hash_file(frame, digest)
        else:
            _hash_file(self.path, digest)
        return digest.hexdigest()

    def status_against(self, stored: Fingerprint | None) -> tuple[str, Fingerprint | None]:
        """Compare with a stored fingerprint: ("new"|"unchanged"|"touched"|"changed", current).

        "touched" means size and content sample match but mtime moved; the caller refreshes the
        stored mtime and does no work. The content hash is read only when the quick check fails.
        """
        if stored is None:
            return "new", self.fingerprint()
        size, mtime = self.stat()
        if (size, mtime) == (stored.size, stored.mtime_ns):
            return "unchanged", stored
        current = Fingerprint(size, mtime, self._sample_hash(size))
        if current.size == stored.size and current.sample_sha256 == stored.sample_sha256:
            return "touched", current
        return "changed", current


def _hash_file(path: Path, digest) -> None:
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)


def _sample_blocks(path: Path) -> bytes:
    """First, middle and last block of a file: enough to notice re-encodes and truncation."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size <= 3 * SAMPLE_BLOCK:
            return handle.read(3 * SAMPLE_BLOCK)  # bounded, whatever the file claims to be
        parts = []
        for offset in (0, size // 2, size - SAMPLE_BLOCK):
            handle.seek(offset)
            parts.append(handle.read(SAMPLE_BLOCK))
        return b"".join(parts)


_NUMBER = re.compile(r"(\d+)")


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part for part in _NUMBER.split(path.name)]


def frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural order (2.jpg before 10.jpg)."""
    images = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(images, key=_natural_key)


def _video_id(relative: Path) -> str:
    return check_video_id("/".join(relative.parts))


@dataclass(frozen=True)
class Skipped:
    """Something under a root that looked like a video (or a folder) but is not read, and why."""

    path: Path
    reason: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Discovery:
    """What `scan` found: videos by id, and what it skipped."""

    sources: list[VideoSource] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def not_regular(path: Path) -> str | None:
    """Why `path` must not be opened as a video file (None: a regular file, or a link to one)."""
    try:
        mode = os.stat(path).st_mode  # follows links: a link to a regular file is fine
    except FileNotFoundError:
        return "broken symlink (its target does not exist)" if os.path.islink(path) else "no such file"
    except OSError as error:
        return f"cannot stat: {error.strerror or error}"
    if stat.S_ISREG(mode):
        return None
    kind = next((text for test, text in _KINDS if test(mode)), "not a regular file")
    return f"{kind}, not a regular file" if "regular" not in kind else kind


def discover(roots: Sequence[Path | str], follow_links: bool = False) -> list[VideoSource]:
    """All videos under the roots, sorted by id (what `scan` finds, without what it skipped)."""
    return scan(roots, follow_links).sources


def scan(roots: Sequence[Path | str], follow_links: bool = False) -> Discovery:
    """All videos under the roots, sorted by id, and what was skipped; ids must be unique across roots.

    A root that is itself a video file yields one video named after its stem. Hidden files and
    folders (starting with '.') are passed over. Symlinked folders are followed while they lead to a
    folder inside the root; one leading outside it (a link to `/` would pull in the whole machine)
    is skipped with its reason unless `follow_links`.
    """
    found: dict[str, VideoSource] = {}
    skipped: list[Skipped] = []
    for root in map(Path, roots):
        if not root.exists():
            reason = "broken symlink (its target does not exist)" if root.is_symlink() else "no such file or folder"
            raise UsageError(f"{root}: {reason}")
        for source in _discover_root(root, skipped, follow_links):
            other = found.get(source.video_id)
            if other is not None and other.path != source.path:
                raise UsageError(
                    f"video id {source.video_id!r} is claimed by both {other.path} and {source.path}; "
                    "rename one or extract them in separate runs"
                )
            found[source.video_id] = source
    return Discovery([found[key] for key in sorted(found)], skipped)


def _folder_key(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _outside(link: Path, inside: Path) -> bool:
    """Whether a symlinked folder leads out of `inside` (a resolved path)."""
    target = link.resolve()
    return target != inside and inside not in target.parents


def _discover_root(root: Path, skipped: list[Skipped], follow_links: bool = False) -> Iterator[VideoSource]:
    if not root.is_dir():
        problem = not_regular(root)
        if problem:
            raise UsageError(f"{root}: {problem}; give a video file or a folder")
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise UsageError(f"{root}: not a video file (known suffixes: {', '.join(sorted(VIDEO_SUFFIXES))})")
        yield VideoSource(check_video_id(root.resolve().stem), root)
        return
    walked = {_folder_key(root): root}
    inside = root.resolve()

    def cannot_list(error: OSError) -> None:
        skipped.append(Skipped(Path(error.filename or root), f"cannot list folder: {error.strerror or error}"))

    for folder, subfolders, files in os.walk(root, onerror=cannot_list, followlinks=True):
        here = Path(folder)
        kept = []
        for name in sorted(d for d in subfolders if not d.startswith(".")):
            try:
                key = _folder_key(here / name)
            except OSError as error:
                skipped.append(Skipped(here / name, f"cannot stat: {error.strerror or error}"))
                continue
            if key in walked:  # a link loop, or a second way into a folder already walked
                skipped.append(Skipped(here / name, f"symlinked folder already searched as {walked[key]}"))
                continue
            if not follow_links and (here / name).is_symlink() and _outside(here / name, inside):
                reason = (
                    f"symlinked folder leads outside {root} (to {(here / name).resolve()}); --follow-links follows it"
                )
                skipped.append(Skipped(here / name, reason))
                continue
            walked[key] = here / name
            kept.append(name)
        subfolders[:] = kept
        visible = sorted(f for f in files if not f.startswith("."))
        images = [f for f in visible if Path(f).suffix.lower() in IMAGE_SUFFIXES]
        if images and any(_NUMBER.search(Path(f).stem) for f in images):
            relative = here.relative_to(root)
            # a root that is itself a frame folder (even `.`) is named after the folder
            video_id = _video_id(relative) if relative.parts else check_video_id(root.resolve().name)
            yield VideoSource(video_id, here, is_frame_folder=True)
        for name in visible:
            path = here / name
            is_video = path.suffix.lower() in VIDEO_SUFFIXES
            if not is_video and not path.is_symlink():
                continue
            problem = not_regular(path)
            if problem is not None:
                if is_video or problem.startswith("broken symlink"):
                    skipped.append(Skipped(path, problem))
                continue
            if is_video:
                yield VideoSource(_video_id(path.relative_to(root).with_suffix("")), path)
