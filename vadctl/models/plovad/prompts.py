"""Class prompts through CLIP's text tower: the open vocabulary of the PLOVAD-based model.

When the model reads `clip` frame embeddings, the text tower of the same CLIP (same architecture,
same weight file: its sha256 must match the one recorded in the feature's identity) embeds
"a video of {class}" for each class; the class head compares snippet embeddings with those, so
`vadctl score --classes …` can name classes no training video showed. The weights come from local
files only, found as the `clip` featurizer finds them (`--weights clip=PATH`, the config file, the
weights folder as `clip-<model>-<pretrained>.safetensors`), or from the model's `clip_weights`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vadctl.backbones.torch_compat import import_extra
from vadctl.backbones.weights import ResolvedWeights, WeightFile, WeightResolver
from vadctl.errors import UsageError, WeightsError

# torch is imported inside the functions that use it: importing this module stays cheap (CLI start-up).

CUSTOM = "custom"


def weight_file(model: str, pretrained: str) -> WeightFile:
    return WeightFile(
        key="clip",
        feature="plovad class prompts",
        describes=f"CLIP {model} ({pretrained}) with its text tower",
        names=WeightFile.stem_names(f"clip-{model}-{pretrained}"),
    )


def find_weights(
    params: Mapping[str, Any], explicit: str | Path | None, resolver: WeightResolver | None
) -> ResolvedWeights:
    """The CLIP file behind a `clip` entry, checked against the sha256 in its identity."""
    model, pretrained = str(params.get("model", "ViT-L-14")), str(params.get("pretrained", "openai"))
    wanted = str(params.get("weights", ""))
    wf = weight_file(model, pretrained)
    if explicit is not None:
        resolver = WeightResolver(explicit={"clip": Path(explicit).expanduser()})
    found = (resolver or WeightResolver()).resolve(wf)
    if wanted and found.identity != wanted:
        raise WeightsError(
            f"plovad class prompts: {found.path} ({found.identity}) is not the CLIP the `clip` feature was "
            f"extracted with ({wanted}); pass that file"
        )
    return found


def embed_prompts(
    classes: Sequence[str], template: str, params: Mapping[str, Any], weights: ResolvedWeights
) -> np.ndarray:
    """(len(classes), D) L2-normalised text embeddings of `template.format(class)`."""
    import torch

    if "{}" not in template:
        raise UsageError(f"plovad: prompt {template!r} needs a {{}} where the class name goes")
    open_clip = import_extra("open_clip", "plovad class prompts", "clip")
    model, pretrained = str(params.get("model", "ViT-L-14")), str(params.get("pretrained", "openai"))
    quick_gelu = False
    if pretrained != CUSTOM:
        quick_gelu = bool(open_clip.get_pretrained_cfg(model, pretrained).get("quick_gelu", False))
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # "initialized randomly": the weights are loaded next
    try:
        clip = open_clip.create_model(model, pretrained=None, force_quick_gelu=quick_gelu, device="cpu")
    finally:
        logging.disable(previous)
    try:
        open_clip.load_checkpoint(clip, str(weights.path), strict=True, weights_only=True)
    except Exception as error:  # open_clip/torch raise several types for a bad file
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(f"plovad class prompts: {weights.path}: cannot load into CLIP {model}: {first}") from None
    tokenizer = open_clip.get_tokenizer(model)
    with torch.inference_mode():
        tokens = tokenizer([template.format(name) for name in classes])
        text = clip.eval().encode_text(tokens).float()
        text = torch.nn.functional.normalize(text, dim=-1)
    return text.numpy().astype(np.float32)
