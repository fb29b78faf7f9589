"""The ImageNet trunk compiled to ONNX once per weight file, in a child process, and kept on disk:
a CPU extract never imports torch, a damaged graph is compiled again, never run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_models import imagenet_weights
from videos import Square, make_video

from vadctl.backbones.weights import ResolvedWeights, torch_hub_dir
from vadctl.errors import WeightsError
from vadctl.features import appearance_model
from vadctl.features import compiled as compiled_files

NO_TORCH_EXTRACT = """
import sys
from vadctl import api
report = api.extract(sys.argv[1], store=sys.argv[2], features="flow,regions,appearance_regions",
                     params={"appearance_regions.size": 32}, weights={"mobilenet_v2": sys.argv[3]})
assert report.count("extracted") == 1 and not report.failed, report
print("torch" in sys.modules)
"""


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return imagenet_weights(tmp_path_factory.mktemp("imagenet"))


@pytest.fixture(scope="module")
def compiled_once(weights, tmp_path_factory) -> tuple[Path, bytes]:
    """The tiny weights' graph compiled once for the module: (the file, the graph)."""
    folder = tmp_path_factory.mktemp("compiled-once")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(compiled_files.COMPILED_DIR_ENV, str(folder))
        graph = appearance_model.compiled_graph("appearance", "mobilenet_v2", resolved(weights))
    (path,) = folder.iterdir()
    return path, graph


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "compiled"
    monkeypatch.setenv(compiled_files.COMPILED_DIR_ENV, str(folder))
    return folder


def resolved(path: Path) -> ResolvedWeights:
    return ResolvedWeights(appearance_model.weight_file("appearance", "mobilenet_v2"), path, "test")


def test_a_cpu_extract_with_appearance_reads_the_compiled_graph_and_never_imports_torch(
    weights, compiled_once, cache, tmp_path: Path
):
    cache.mkdir()
    graph = cache / compiled_once[0].name
    graph.write_bytes(compiled_once[0].read_bytes())  # compiled earlier, by the fixture's child
    stamp = graph.stat().st_mtime_ns
    video = make_video(tmp_path / "v" / "a.avi", 12, seed=1, squares=[Square(10, 20, 3.0, 0.0)])
    run = [sys.executable, "-c", NO_TORCH_EXTRACT, str(video.parent), str(tmp_path / "s.zarr"), str(weights)]
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"  # no torch in the extracting process
    assert [p.name for p in cache.iterdir()] == [graph.name] and graph.stat().st_mtime_ns == stamp  # read, not compiled


def test_the_compiled_graph_embeds_as_torch_does(weights, compiled_once):
    onnx = appearance_model.OnnxEncoder(1280, compiled_once[1], threads=1)
    reference = appearance_model.TorchEncoder("appearance", "mobilenet_v2", resolved(weights), _cpu())
    images = np.random.default_rng(3).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    np.testing.assert_allclose(
        onnx.forward(images).astype(np.float32), reference.forward(images).astype(np.float32), atol=2e-3
    )


def _cpu():
    from vadctl.backbones.torch_compat import device

    return device("cpu")


def test_a_damaged_graph_or_one_from_other_weights_is_never_run_but_compiled_again(weights, compiled_once, cache):
    sha = resolved(weights).sha256
    kept, graph = compiled_once
    cache.mkdir()
    path = cache / kept.name
    path.write_bytes(kept.read_bytes())
    name = path.name.removesuffix(compiled_files.SUFFIX)
    assert compiled_files.read_compiled(name, sha) == graph
    assert compiled_files.read_compiled(name, "0" * 64) is None  # a record of other weights

    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the graph
    path.write_bytes(bytes(data))
    assert compiled_files.read_compiled(name, sha) is None
    head = path.read_bytes().split(b"\n", 1)[0]
    path.write_bytes(head + b"\n")  # cut short after the record
    assert compiled_files.read_compiled(name, sha) is None
    path.write_bytes(b"not a record\n" + graph)
    assert compiled_files.read_compiled(name, sha) is None

    again = appearance_model.compiled_graph("appearance", "mobilenet_v2", resolved(weights))
    assert compiled_files.read_compiled(name, sha) == again
    assert json.loads(path.read_bytes().split(b"\n", 1)[0])["weights_sha256"] == sha


def test_a_cache_folder_that_cannot_be_written_still_gives_the_graph(weights, tmp_path: Path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(compiled_files.COMPILED_DIR_ENV, str(blocker / "compiled"))  # below a file: mkdir fails
    graph = appearance_model.compiled_graph("appearance", "mobilenet_v2", resolved(weights))
    assert graph.startswith(b"\x08")  # an ONNX ModelProto: field 1 (ir_version), varint
    assert appearance_model.OnnxEncoder(1280, graph, threads=1).forward(np.zeros((1, 32, 32, 3), np.uint8)).shape


def test_weights_that_do_not_fit_fail_in_one_line_from_the_compiling_child(tmp_path: Path, cache):
    resnet = imagenet_weights(tmp_path, "resnet18")
    with pytest.raises(WeightsError, match="does not hold torchvision mobilenet_v2 weights") as caught:
        appearance_model.compiled_graph("appearance_regions", "mobilenet_v2", resolved(resnet))
    assert "\n" not in str(caught.value) and str(resnet) in str(caught.value)
    assert not any(cache.glob(f"*{compiled_files.SUFFIX}"))  # nothing kept


def test_torch_is_not_imported_to_learn_that_this_build_has_no_cuda_or_where_its_hub_is(monkeypatch, tmp_path):
    code = (
        "import sys; from vadctl.backbones.torch_compat import cuda_possible;"
        "from vadctl.backbones.weights import torch_hub_dir;"
        "print(cuda_possible(), torch_hub_dir(), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    import torch

    assert out == [str(torch.cuda.is_available()), torch.hub.get_dir(), "False"]
    for env in ({"TORCH_HOME": str(tmp_path / "th")}, {"TORCH_HOME": "", "XDG_CACHE_HOME": str(tmp_path / "xdg")}):
        for key, value in env.items():
            monkeypatch.setenv(key, value) if value else monkeypatch.delenv(key, raising=False)
        assert torch_hub_dir() == Path(torch.hub.get_dir())
