"""The one place vadctl adapts the deep-learning stack: offline hubs, torchvision on CPU torch, devices.

- **Offline.** vadctl never downloads: `offline()` sets `HF_HUB_OFFLINE=1` (and tells an already
  imported huggingface_hub) before open_clip or huggingface_hub is imported, so nothing stalls on
  a network call. Weights come from local files only (see `vadctl.backbones.weights`).
- **torchvision on CPU torch.** The torchvision wheel pinned here is linked against CUDA. On a
  CPU-only torch its compiled ops library fails to load, which torchvision tolerates, except that
  it then registers fake kernels for `torchvision::nms`/`qnms` and dies with
  `RuntimeError: operator torchvision::nms does not exist`. `import_torchvision()` defines just
  those operator *schemas* with `torch.library` and imports again: the pure-Python parts
  (transforms, model definitions such as RAFT) work; the compiled ops (nms, roi_align) still raise
  torchvision's own "Couldn't load custom C++ ops" error, and `has_compiled_ops()` says so.
- **Devices.** `device("auto")` is CUDA when present, else CPU; half precision on CUDA only.
  Host-side preprocessing on CPU runs single-threaded (`host_threads`): torch's thread pool costs
  more than it gains on small tensors (a region crop resizes 7× faster on one thread here).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType

from vadctl.errors import UsageError

# Schemas of the operators torchvision registers fake kernels for without checking that its
# compiled library loaded (torchvision 0.2x `_meta_registrations.py`). Nothing implements them.
_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_MISSING_OP = re.compile(r"operator torchvision::(\w+) does not exist")
_shim_library = None  # keeps the torch.library definitions alive


def offline() -> None:
    """Make Hugging Face libraries answer from their local cache only, never the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported before us: its flag was read at import time
        constants.HF_HUB_OFFLINE = True


def import_torchvision() -> ModuleType:
    """`import torchvision`, working around a CUDA-linked wheel on CPU-only torch (see module doc)."""
    global _shim_library
    import torch

    for _ in range(len(_SCHEMAS) + 1):
        try:
            return importlib.import_module("torchvision")
        except RuntimeError as error:
            match = _MISSING_OP.search(str(error))
            if not match or match.group(1) not in _SCHEMAS:
                raise
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                del sys.modules[name]  # drop the half-imported package before importing again
            if _shim_library is None:
                _shim_library = torch.library.Library("torchvision", "DEF")
            _shim_library.define(_SCHEMAS[match.group(1)])
    raise RuntimeError("torchvision still fails to import after defining its operator schemas")


def has_compiled_ops() -> bool:
    """Whether torchvision's compiled operators (nms, roi_align, ...) can run in this process."""
    return bool(import_torchvision().extension._has_ops())


def require_compiled_ops(what: str, extra: str = "detector") -> None:
    torchvision = import_extra("torchvision", what, extra)
    if not torchvision.extension._has_ops():
        import torch

        raise UsageError(
            f"{what} needs torchvision's compiled ops (nms, roi_align), which this torchvision "
            f"{torchvision.__version__} cannot load with torch {torch.__version__}; "
            "install the torchvision build that matches torch (e.g. on a CUDA machine)"
        )


def import_extra(module: str, feature: str, extra: str) -> ModuleType:
    """Import a featurizer's optional dependency, offline, with torchvision made importable first."""
    offline()
    try:
        import_torchvision()
        return importlib.import_module(module)
    except ImportError as error:
        raise UsageError(
            f"feature {feature} needs the '{extra}' extra ({error.name or module} is not installed): "
            f"pip install 'vadctl[{extra}]' -c constraints.txt"
        ) from None


def extra_installed(*modules: str) -> bool:
    """Cheap check (no import) that optional modules are installed."""

    return all(find_spec(m) is not None for m in modules)


def cuda_possible() -> bool:
    """Whether torch could see a GPU, answered without importing torch (200 MB) where it cannot: no
    torch, or a build without CUDA (its `version.py` says `cuda = None`). Else torch is asked."""
    spec = find_spec("torch")
    if spec is None or not spec.origin:
        return False
    try:
        text = (Path(spec.origin).parent / "version.py").read_text()
    except OSError:
        text = ""
    built = re.search(r"^cuda\s*(?::[^=]*)?=\s*(.+?)\s*$", text, re.MULTILINE)
    if built and built.group(1) == "None":
        return False
    import torch

    return bool(torch.cuda.is_available())


def device(name: str = "auto"):
    """'auto' → CUDA when torch sees a GPU, else CPU; or 'cpu' / 'cuda[:index]' as given."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(name)
    except RuntimeError:
        chosen = None
    if chosen is None or chosen.type not in ("cpu", "cuda"):
        raise UsageError(f"device={name!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={name!r}: this torch build ({torch.__version__}) sees no CUDA GPU; use cpu or auto")
    return chosen


def inference_dtype(dev):
    """Half precision on CUDA (the model's speed there), float32 on CPU (half is slow there)."""
    import torch

    return torch.float16 if dev.type == "cuda" else torch.float32


@contextlib.contextmanager
def host_threads(dev):
    """One intra-op thread for preprocessing on the CPU: small ops, no pool wake-ups; restored after."""
    import torch

    if dev.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
