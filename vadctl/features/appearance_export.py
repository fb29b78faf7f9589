"""`python -m vadctl.features.appearance_export`: an ImageNet trunk compiled to ONNX in a child process.

Run by `appearance_model.compiled_graph` when a weight file has no compiled graph on disk yet
(`vadctl.features.compiled`). Everything that needs torch happens here: checking that the file
holds the backbone's tensors, loading them, exporting, and checking that onnxruntime reproduces
torch on random images. The extracting process only reads the graph, so it never imports torch.
vadctl's errors leave as exit codes with their one-line message last on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from vadctl.backbones.weights import ResolvedWeights
from vadctl.errors import UsageError, WeightsError
from vadctl.features import appearance_model as backbones
from vadctl.features.compiled import EXIT_USAGE, EXIT_WEIGHTS

PARITY_ATOL = 1e-3  # on unit-length embeddings (float32); the stored ones are float16 (~1e-3 apart)


def export(feature: str, backbone: str, path: Path) -> bytes:
    """The normalised trunk as ONNX, checked against torch on two random images."""
    import torch

    weights = ResolvedWeights(backbones.weight_file(feature, backbone), path, "compile")
    backbones.check_weights(feature, backbone, weights)
    trunk = backbones.normalised_trunk(backbones.load_trunk(feature, backbone, weights))
    graph = backbones.export_graph(trunk)
    images = np.random.default_rng(0).integers(0, 256, (2, 72, 56, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = trunk(torch.from_numpy(images)).numpy()
    got = backbones.OnnxEncoder(backbones.BACKBONES[backbone].dim, graph, threads=1).pooled(images)
    unit = [x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in (expected, got)]
    worst = float(np.abs(unit[0] - unit[1]).max())
    if not worst <= PARITY_ATOL:
        raise WeightsError(f"{feature}: {path}: the ONNX export differs from torch by {worst:.2g} (> {PARITY_ATOL})")
    return graph


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feature", required=True)
    parser.add_argument("--backbone", required=True)
    parser.add_argument("--weights", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        graph = export(args.feature, args.backbone, args.weights)
    except UsageError as error:
        print(error, file=sys.stderr)
        return EXIT_USAGE
    except WeightsError as error:
        print(error, file=sys.stderr)
        return EXIT_WEIGHTS
    args.out.write_bytes(graph)
    return 0


if __name__ == "__main__":
    sys.exit(main())
