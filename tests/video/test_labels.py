"""Video labels from the review page's verdicts: what a later `vadctl fit --video-labels` reads."""

from __future__ import annotations

import pytest

from vadctl.errors import UsageError
from vadctl.video.labels import read_video_labels


def test_verdicts_read_as_video_labels(tmp_path):
    path = tmp_path / "verdicts.csv"
    path.write_text(
        "video,start_frame,end_frame,verdict\n"
        "cam1/a,10,20,false_alarm\n"
        "cam1/a,40,52,reviewed\n"  # one real anomaly makes the video anomalous
        "cam1/b,5,9,false_alarm\n"
        "cam1/b,70,80,false_alarm\n"  # every flagged part judged a false alarm: normal
    )
    labels = read_video_labels(path)
    assert labels.labels == {"cam1/a": 1, "cam1/b": 0} and not labels.has_classes


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("cam1/a,10,20,maybe\ncam1/b,1,2,reviewed\n", "line 2: verdict 'maybe' of video cam1/a"),
        ("cam1/a,10,20,reviewed\ncam1/b,1,2,reviewed\n", "every video is labelled anomalous"),
        ("cam1/a,10,reviewed\n", "line 2: expected video,start_frame,end_frame,verdict"),
    ],
)
def test_bad_verdicts_are_one_line_errors(tmp_path, rows, problem):
    path = tmp_path / "verdicts.csv"
    path.write_text("video,start_frame,end_frame,verdict\n" + rows)
    with pytest.raises(UsageError, match=problem) as error:
        read_video_labels(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)
