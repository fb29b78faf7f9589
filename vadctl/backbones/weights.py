"""Model weights from local files only: where each one is looked for, its checksum, and reading it.

vadctl never downloads weights. A weighted featurizer names the file it needs (`WeightFile`), and
`WeightResolver` looks for it, first match wins:

1. an explicit path: `vadctl extract --weights KEY=PATH` (or `WeightResolver(explicit=...)`);
2. the `[weights]` table of the config file (`$VADCTL_CONFIG`, default
   `~/.config/vadctl/config.toml`): `KEY = "PATH"`, relative paths from the config file's folder;
3. the weights folder (`$VADCTL_WEIGHTS_DIR`, default `~/.cache/vadctl/weights`) under the
   documented file names (`vadctl weights` lists them);
4. caches other tools fill: the Hugging Face hub cache (read offline), torch hub's checkpoints.

A feature's identity holds the weights' sha256 (`ResolvedWeights.identity`), not their path: moving
the file keeps the cached features; other weights make a new entry. Files are read as safetensors,
or as torch checkpoints with `torch.load(weights_only=True)` (no arbitrary pickles).
"""

from __future__ import annotations

import hashlib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vadctl.backbones.torch_compat import offline
from vadctl.errors import UsageError, WeightsError

TENSOR_SUFFIXES = (".safetensors", ".pt", ".pth", ".pyth", ".bin")
_CONTAINER_KEYS = ("state_dict", "model_state", "model", "module")


def weights_dir() -> Path:
    """The folder searched for documented weight file names."""
    if os.environ.get("VADCTL_WEIGHTS_DIR"):
        return Path(os.environ["VADCTL_WEIGHTS_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "vadctl" / "weights"


def config_path() -> Path:
    """The config file: $VADCTL_CONFIG (which must exist: a name pointing nowhere is refused by
    every command alike, never read as "no config"), else ~/.config/vadctl/config.toml (optional)."""
    if os.environ.get("VADCTL_CONFIG"):
        path = Path(os.environ["VADCTL_CONFIG"]).expanduser()
        if not path.is_file():
            raise UsageError(f"{path}: config file named by $VADCTL_CONFIG does not exist")
        return path
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "vadctl" / "config.toml"


@dataclass(frozen=True)
class WeightFile:
    """A weight file a featurizer needs.

    `key` names it on the command line (`--weights KEY=PATH`) and in the config file; `names` are
    the file names looked for in the weights folder, in order; `hf` are (repo id, file name) pairs
    in the Hugging Face cache; `torch_hub` file names in torch hub's checkpoint folder.
    """

    key: str
    feature: str
    describes: str
    names: tuple[str, ...]
    hf: tuple[tuple[str, str], ...] = ()
    torch_hub: tuple[str, ...] = ()
    source: str = ""

    @staticmethod
    def stem_names(stem: str, suffixes: Iterable[str] = TENSOR_SUFFIXES) -> tuple[str, ...]:
        return tuple(stem + suffix for suffix in suffixes)

    @classmethod
    def torchvision(cls, key: str, feature: str, builder: str, official: str, describes: str) -> WeightFile:
        """A torchvision model's weights: `<builder>.safetensors|.pth|.pt` or its official file name,
        also found in torch hub's checkpoints folder."""
        return cls(
            key=key,
            feature=feature,
            describes=describes,
            names=(*cls.stem_names(builder, (".safetensors", ".pth", ".pt")), official),
            torch_hub=(official,),
            source=f"torchvision's model weights ({official})",
        )


@dataclass(frozen=True)
class ResolvedWeights:
    """A weight file that was found, and where."""

    file: WeightFile
    path: Path
    origin: str

    @property
    def sha256(self) -> str:
        return sha256_file(self.path)

    @property
    def identity(self) -> str:
        """What goes into a feature's parameters: the content, never the path."""
        return f"sha256:{self.sha256[:16]}"


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: Path) -> str:
    """sha256 of a file, computed once per (path, size, mtime) in a process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                digest.update(chunk)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def parse_weight_options(items: Iterable[str]) -> dict[str, Path]:
    """['clip=/w/clip.safetensors'] → {'clip': Path('/w/clip.safetensors')}."""
    explicit: dict[str, Path] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--weights {item!r}: expected KEY=PATH (e.g. clip=/w/clip-ViT-L-14-openai.safetensors)")
        explicit[key.strip()] = Path(value.strip()).expanduser()
    return explicit


@dataclass
class WeightResolver:
    """Finds weight files: explicit paths, config file, weights folder, then other tools' caches."""

    explicit: Mapping[str, Path] = field(default_factory=dict)
    config: Path | None = None
    folder: Path | None = None

    def __post_init__(self) -> None:
        self.config = self.config or config_path()
        self.folder = self.folder or weights_dir()
        self._configured = self._read_config()

    def _read_config(self) -> dict[str, Path]:
        path = self.config
        if not path.is_file():
            if os.environ.get("VADCTL_CONFIG") and path == config_path():
                raise UsageError(f"{path}: config file named by $VADCTL_CONFIG does not exist")
            return {}
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise UsageError(f"{path}: cannot read config file: {error}") from None
        table = data.get("weights", {})
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise UsageError(f'{path}: [weights] must map names to paths, e.g. clip = "/weights/clip.safetensors"')
        return {key: (path.parent / Path(value).expanduser()) for key, value in table.items()}

    def check_keys(self, known: Iterable[str]) -> None:
        """Explicit keys must name a weight file of this run (a typo must not be silently ignored)."""
        unknown = sorted(set(self.explicit) - set(known))
        if unknown:
            have = ", ".join(sorted(set(known))) or "none"
            raise UsageError(f"--weights {', '.join(unknown)}: no feature of this run uses it (weights used: {have})")

    def candidates(self, wf: WeightFile) -> list[tuple[str, Path]]:
        """(origin, path) in search order; the cache entries only where present."""
        found: list[tuple[str, Path]] = []
        if wf.key in self.explicit:
            found.append(("--weights", self.explicit[wf.key]))
        if wf.key in self._configured:
            found.append((f"config {self.config}", self._configured[wf.key]))
        found += [("weights dir", self.folder / name) for name in wf.names]
        found += [("Hugging Face cache", path) for path in _hf_cached(wf.hf)]
        found += [("torch hub cache", path) for path in _torch_hub_cached(wf.torch_hub)]
        return found

    def find(self, wf: WeightFile) -> ResolvedWeights | None:
        for origin, path in self.candidates(wf):
            if origin == "--weights" or origin.startswith("config"):
                if not path.is_file():  # a path someone wrote down must exist: no silent fallback
                    raise WeightsError(f"{wf.feature}: weights file {path} (from {origin} {wf.key}=...) does not exist")
                return ResolvedWeights(wf, path, origin)
            if path.is_file():
                return ResolvedWeights(wf, path, origin)
        return None

    def resolve(self, wf: WeightFile) -> ResolvedWeights:
        found = self.find(wf)
        if found is not None:
            return found
        alternatives = f" (or {', '.join(wf.names[1:])})" if len(wf.names) > 1 else ""
        where = f"{wf.names[0]}{alternatives} in {self.folder} ($VADCTL_WEIGHTS_DIR)"
        if wf.hf:
            where += f", {' or '.join(dict.fromkeys(repo for repo, _ in wf.hf))} in the Hugging Face cache"
        if wf.torch_hub:
            where += f", {' or '.join(wf.torch_hub)} in the torch hub cache"
        hint = f"; get it from {wf.source}" if wf.source else ""
        raise WeightsError(
            f"{wf.feature}: no weights for {wf.describes}: looked for {where}; pass --weights {wf.key}=PATH{hint}"
        )


def _hf_cached(entries: Iterable[tuple[str, str]]) -> list[Path]:
    if not entries:
        return []

    offline()
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return []
    found = []
    cache_dir = os.environ.get("HF_HUB_CACHE")  # read now: huggingface_hub reads it once, at import
    for repo, filename in entries:
        hit = try_to_load_from_cache(repo, filename, cache_dir=cache_dir)  # a filesystem lookup, no network
        if isinstance(hit, str):
            found.append(Path(hit))
    return found


def torch_hub_dir() -> Path:
    """torch hub's folder as `torch.hub.get_dir()` finds it ($TORCH_HOME/hub, else
    $XDG_CACHE_HOME/torch/hub, else ~/.cache/torch/hub), without importing torch (200 MB)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("TORCH_HOME") or os.path.join(cache, "torch")
    return Path(os.path.expanduser(home)) / "hub"


def _torch_hub_cached(names: Iterable[str]) -> list[Path]:
    folder = torch_hub_dir() / "checkpoints"
    return [folder / name for name in names if (folder / name).is_file()]


# ----- reading -------------------------------------------------------------------------------------
def _unwrap(data: Any, feature: str, path: Path) -> dict[str, Any]:
    """The state dict inside a checkpoint ({'model_state': {...}} etc.), 'module.' prefixes removed."""
    import torch

    for _ in range(2):
        if isinstance(data, Mapping) and not any(isinstance(v, torch.Tensor) for v in data.values()):
            inner = next((data[k] for k in _CONTAINER_KEYS if isinstance(data.get(k), Mapping)), None)
            if inner is not None:
                data = inner
    if not isinstance(data, Mapping) or not data:
        raise WeightsError(f"{feature}: {path}: holds no tensors (not a state dict)")
    tensors = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise WeightsError(f"{feature}: {path}: holds no tensors (not a state dict)")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    return tensors


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def load_tensors(path: Path, feature: str) -> dict[str, Any]:
    """A state dict from a .safetensors file or a torch checkpoint (loaded with weights_only=True)."""
    import torch

    if not path.is_file():
        raise WeightsError(f"{feature}: weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _unwrap(load_file(str(path)), feature, path)
        except (SafetensorError, OSError, ValueError) as error:
            raise WeightsError(f"{feature}: {path}: not a readable safetensors file ({_first_line(error)})") from None
    try:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as error:  # legacy (non-zip) checkpoints cannot be memory-mapped
            if "mmap" not in str(error):
                raise
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        reason = _first_line(error)
        if "weights_only" in str(error) or "Unsupported global" in str(error):
            reason = "it holds Python objects that are not tensors, refused without trusting the pickle"
        raise WeightsError(
            f"{feature}: {path}: cannot load as a torch checkpoint with weights_only=True ({reason}); "
            "use a .safetensors file"
        ) from None
    return _unwrap(data, feature, path)


def tensor_shapes(path: Path, feature: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a weight file's tensors, reading as little as possible."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as error:
            raise WeightsError(f"{feature}: {path}: not a readable safetensors file ({_first_line(error)})") from None
        return {k: v for k, v in _unwrap_names(shapes).items()}
    return {k: tuple(v.shape) for k, v in load_tensors(path, feature).items()}


def _unwrap_names(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    if shapes and all(k.startswith("module.") for k in shapes):
        return {k[len("module.") :]: v for k, v in shapes.items()}
    return shapes


def check_fits(
    feature: str, path: Path, what: str, expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]
) -> None:
    """A weight file must hold exactly the model's tensors, each of the model's shape."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(expected) & set(found) if tuple(expected[k]) != tuple(found[k]))
    if not (missing or unexpected or reshaped):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensors missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    if reshaped:
        key = reshaped[0]
        parts.append(f"{len(reshaped)} of another shape (e.g. {key}: {tuple(found[key])} ≠ {tuple(expected[key])})")
    raise WeightsError(f"{feature}: {path} does not hold {what} weights: {', '.join(parts)}")
