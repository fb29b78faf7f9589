"""Ped1 weak split (ours), the validation scene for weak supervision: plovad's design is chosen here.

Training: Ped1's 17 training clips (normal, label 0) and test/01–12 (anomalous, label 1; every Ped1 test
clip holds an anomaly), video-level labels only. Evaluation: frame AUROC on test/13–18 (1,200 frames),
whose labels reach nothing but the evaluation; macro over the clips holding both classes (14 is anomalous
throughout). Beside it, AI-VAD and FUVAS fitted on the training clips alone. Five seeds by default (the
seed changes the network's initialisation, batches and the held-out calibration clips). Usage:
  python benchmarks/ped1_weak.py [--data ../shared/data/ped1] [--seeds 5] [-p KEY=VALUE ...]
"""

from __future__ import annotations

from weak_split import DATA, WeakScene, main

PED1 = WeakScene(
    "Ped1",
    DATA / "ped1",
    weak_anomalous=tuple(f"{i:02d}" for i in range(1, 13)),
    evaluated=tuple(f"{i:02d}" for i in range(13, 19)),
)

if __name__ == "__main__":
    main(PED1, __doc__)
