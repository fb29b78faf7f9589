"""Ped2 weak split (ours): weak supervision on UCSD Ped2 with video-level labels only; the confirming run.

Training: Ped2 train/01–16 (normal, label 0) and test/01–06 (anomalous, label 1), video-level labels only.
Evaluation: frame AUROC on test/07–12, with Ped2's labels of those clips only; macro over 07 and 12, the two
that hold both classes. Beside it, AI-VAD and FUVAS fitted on train/01–16 alone. plovad's design is chosen on
Ped1's weak split (benchmarks/ped1_weak.py); this split's labels choose nothing. Usage:
  python benchmarks/ped2_weak.py [--data ../shared/data/ped2] [--seeds 5] [-p KEY=VALUE ...]
"""

from __future__ import annotations

from weak_split import DATA, WeakScene, main

PED2 = WeakScene(
    "Ped2",
    DATA / "ped2",
    weak_anomalous=("01", "02", "03", "04", "05", "06"),
    evaluated=("07", "08", "09", "10", "11", "12"),
)

if __name__ == "__main__":
    main(PED2, __doc__)
