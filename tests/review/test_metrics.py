"""Evaluation against hand-computed values, and refusal of misaligned inputs."""

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vadctl.errors import UsageError
from vadctl.review.metrics import align, equal_error_rate, evaluate, read_labels, verdict_labels


def table(rows: list[tuple[str, int, float, bool]]) -> pl.DataFrame:
    video, frame, score, flagged = zip(*rows, strict=True)
    return pl.DataFrame({"video": video, "frame": frame, "score": score, "is_anomaly": flagged})


def labels_file(tmp_path: Path, rows: list[tuple[str, int, int]]) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text("video,frame,label\n" + "".join(f"{v},{f},{lab}\n" for v, f, lab in rows))
    return path


def test_hand_computed_metrics(tmp_path: Path):
    scores = table(
        [
            ("01", 0, 0.1, False),
            ("01", 1, 0.4, False),
            ("01", 2, 0.35, True),
            ("01", 3, 0.8, True),
            ("02", 0, 0.2, False),
            ("02", 1, 0.3, False),
        ]
    )
    labels = read_labels(
        labels_file(tmp_path, [("01", 0, 0), ("01", 1, 0), ("01", 2, 1), ("01", 3, 1), ("02", 0, 0), ("02", 1, 0)])
    )
    assert labels["video"].to_list()[0] == "01"  # ids keep their leading zeros
    joined, notes = align(scores, labels)
    metrics = evaluate(joined)
    # pooled: positives {0.35, 0.8} vs negatives {0.1, 0.4, 0.2, 0.3}: 0.35 beats 3 of 4, 0.8 beats 4 → 7/8
    assert metrics.micro_auroc == pytest.approx(7 / 8)
    assert metrics.macro_auroc == pytest.approx(0.75) and metrics.macro_videos == 1
    assert metrics.single_class_videos == ["02"]
    assert metrics.confusion == {"tn": 4, "fp": 0, "fn": 0, "tp": 2}
    assert metrics.f1 == pytest.approx(1.0)
    assert metrics.average_precision == pytest.approx((1 + 2 / 3) / 2)
    assert notes == []


def test_equal_error_rate_of_perfect_and_inverted_scores():
    y = np.array([0, 0, 1, 1])
    assert equal_error_rate(y, np.array([0.1, 0.2, 0.8, 0.9])) == pytest.approx(0.0)
    assert equal_error_rate(y, np.array([0.9, 0.8, 0.2, 0.1])) == pytest.approx(1.0)


def test_misaligned_scores_and_labels_are_reported(tmp_path: Path):
    scores = table([("01", 0, 0.1, False), ("01", 1, 0.9, True), ("03", 0, 0.5, False)])
    labels = read_labels(labels_file(tmp_path, [("01", 0, 0), ("01", 1, 1), ("01", 2, 1), ("02", 0, 1)]))
    with pytest.raises(UsageError) as info:
        align(scores, labels)
    message = str(info.value)
    assert "labelled but not scored: 02" in message and "scored but not labelled: 03" in message
    assert "video 01: 2 frames scored, 3 labelled" in message
    joined, notes = align(scores, labels, partial=True)
    assert len(joined) == 2 and len(notes) == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ("video,frame\n01,0\n", "missing: label"),
        ("video,frame,label\n01,0,2\n", "must be 0 or 1"),
        ("video,frame,label\n01,0,1\n01,0,0\n", "more than once"),
        ("video,frame,label\n01,x,1\n", "frame 'x' must be a whole number"),
    ],
)
def test_bad_label_files(tmp_path: Path, content: str, message: str):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        read_labels(path)
    with pytest.raises(UsageError, match="no such labels file"):
        read_labels(tmp_path / "none.csv")


def test_video_and_class_confusion(tmp_path: Path):
    rows = [("n", 0, 0.1, False), ("n", 1, 0.2, False), ("b", 0, 0.9, True), ("b", 1, 0.8, True)]
    rows += [("c", 0, 0.1, False), ("c", 1, 0.9, True), ("m", 0, 0.1, False), ("m", 1, 0.2, False)]
    scores = table(rows).with_columns(
        pl.col("video").replace_strict({"n": "bike", "b": "bike", "c": "bike", "m": "cart"}).alias("video_class")
    )
    path = tmp_path / "labels.csv"
    truth = {"n": (0, ""), "b": (1, "bike"), "c": (1, "cart"), "m": (1, "cart")}
    path.write_text(
        "video,frame,label,class\n" + "".join(f"{v},{f},{truth[v][0]},{truth[v][1]}\n" for v in truth for f in (0, 1))
    )
    joined, _ = align(scores, read_labels(path))
    metrics = evaluate(joined)
    assert metrics.video_confusion == {"tn": 1, "fp": 0, "fn": 1, "tp": 2}
    assert metrics.video_accuracy == 0.75
    confusion = metrics.class_confusion
    assert confusion["labels"] == ["normal", "bike", "cart"]
    assert confusion["matrix"] == [[1, 0, 0], [0, 1, 0], [1, 1, 0]]  # m missed (normal); c called a bike
    assert metrics.class_accuracy == 0.5 and metrics.class_accuracy_anomalous == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    "content, message",
    [
        ("video,frame\n01,0\n", "needs columns video,frame,label (missing: label)"),
        ("video\n01\n", "missing: frame, label)"),
        ("video,frame,label\n01,0,1\n07,3,5\n", "line 3 (video 07): label 5 must be 0 or 1"),
        ("video,frame,label\n01,0,1\n07,3,5\n08,1,7\n", "line 3 (video 07): label 5 must be 0 or 1"),
        ("video,frame,label\n01,0,1\n02,4,0\n02,4,1\n", "video 02 frame 4 is labelled more than once"),
        ('video,frame,label\n"01,0,1\n', "cannot read as CSV"),
    ],
)
def test_label_file_errors_name_what_is_wrong(tmp_path: Path, content: str, message: str):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(UsageError) as info:
        read_labels(path)
    assert message in str(info.value) and str(tmp_path) in str(info.value)


def test_read_scores_checks_file_and_columns(tmp_path: Path):
    from vadctl.review.metrics import read_scores

    path = tmp_path / "s.parquet"
    pl.DataFrame({"video": ["a"], "frame": [0], "score": [0.5]}).write_parquet(path)
    assert read_scores(path).to_dicts() == [{"video": "a", "frame": 0, "score": 0.5}]
    with pytest.raises(UsageError, match=r"missing column\(s\) score_minmax"):
        read_scores(path, "score_minmax")
    with pytest.raises(UsageError, match="no such scores file"):
        read_scores(tmp_path / "none.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(UsageError, match="cannot read as Parquet"):
        read_scores(tmp_path / "bad.parquet")


def test_equal_error_rate_is_the_mean_of_both_rates_where_they_cross():
    """ROC here (sklearn): (fpr, fnr) = (0, 1), (0, .5), (.25, .5), (.25, 0), (1, 0). |fnr − fpr| is
    smallest (0.25) first at (.25, .5): the EER is their mean, 0.375 (not the fpr 0.25 nor the fnr 0.5)."""
    y = np.array([0, 0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.6, 0.9])
    assert equal_error_rate(y, scores) == pytest.approx(0.375)


def test_precision_recall_and_f1_match_scikit_learn_where_they_differ(tmp_path: Path):
    """Flags with 2 true positives, 1 false positive, 2 misses: precision 2/3, recall 1/2, F1 4/7
    (a mistake that swaps or mixes the two rates shows here, not where both are 1)."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    rows = [("01", 0, 0.9, True), ("01", 1, 0.8, True), ("01", 2, 0.7, True), ("01", 3, 0.2, False)]
    rows += [("01", 4, 0.1, False), ("01", 5, 0.3, False)]
    truth = [1, 1, 0, 1, 1, 0]
    labels = read_labels(labels_file(tmp_path, [("01", f, y) for f, y in enumerate(truth)]))
    metrics = evaluate(align(table(rows), labels)[0])
    flags = [flagged for *_, flagged in rows]
    assert metrics.confusion == {"tn": 1, "fp": 1, "fn": 2, "tp": 2}
    assert metrics.precision == pytest.approx(precision_score(truth, flags)) == pytest.approx(2 / 3)
    assert metrics.recall == pytest.approx(recall_score(truth, flags)) == pytest.approx(1 / 2)
    assert metrics.f1 == pytest.approx(f1_score(truth, flags)) == pytest.approx(4 / 7)
    assert [v.flagged for v in metrics.videos] == [3] and metrics.column == "score"
    none_flagged = evaluate(align(table([(v, f, s, False) for v, f, s, _ in rows]), labels)[0])
    assert (none_flagged.precision, none_flagged.recall, none_flagged.f1) == (0.0, 0.0, 0.0)


def test_aligned_rows_come_sorted_and_the_refusals_say_what_to_do(tmp_path: Path):
    scores = table([("02", 1, 0.5, False), ("01", 1, 0.2, False), ("02", 0, 0.4, False), ("01", 0, 0.1, False)])
    labels = read_labels(labels_file(tmp_path, [("01", 1, 0), ("02", 0, 1), ("01", 0, 1), ("02", 1, 0)]))
    joined, _ = align(scores, labels)
    assert joined.select("video", "frame").rows() == [("01", 0), ("01", 1), ("02", 0), ("02", 1)]
    assert joined["label"].to_list() == [1, 0, 1, 0]
    many = table([(f"s{i}", 0, 0.1, False) for i in range(7)])
    with pytest.raises(UsageError) as info:
        align(many, labels)
    message = str(info.value)
    assert message.startswith("scores and labels do not line up: videos labelled but not scored: 01, 02; ")
    assert message.endswith(" (pass --partial to evaluate what matches)")
    assert "s0, s1, s2, s3, s4 … (7 in all)" in message
    with pytest.raises(UsageError, match=r"^scores and labels share no \(video, frame\) pairs$"):
        align(many, labels, partial=True)
    with pytest.raises(
        UsageError, match=r"^scores have no column 'psnr' \(columns: video, frame, score, is_anomaly, label\)$"
    ):
        evaluate(joined, "psnr")
    with pytest.raises(UsageError, match=r"^column 'score' holds NaN or infinite scores$"):
        evaluate(joined.with_columns(pl.lit(float("nan")).alias("score")))


def test_review_verdicts_become_frame_labels_over_each_events_frames(tmp_path: Path):
    verdicts = pl.DataFrame(
        {
            "video": ["01", "01", "02", "01"],
            "start_frame": [2, 10, 0, 3],
            "end_frame": [4, 10, 1, 5],  # the last event overlaps the first (two models, one event)
            "verdict": ["reviewed", "false_alarm", "reviewed", "reviewed"],
        }
    )
    labels = verdict_labels(verdicts, tmp_path / "verdicts.csv")
    assert labels.rows() == [
        ("01", 2, 1),
        ("01", 3, 1),
        ("01", 4, 1),
        ("01", 10, 0),
        ("02", 0, 1),
        ("02", 1, 1),
        ("01", 5, 1),
    ]
    assert labels.schema == {"video": pl.String, "frame": pl.Int64, "label": pl.Int64}
    unknown = verdicts.with_columns(pl.Series("verdict", ["reviewed", "maybe", "reviewed", "reviewed"]))
    with pytest.raises(UsageError, match=r"verdicts.csv: verdict 'maybe': expected one of false_alarm, reviewed$"):
        verdict_labels(unknown, tmp_path / "verdicts.csv")


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty file (expected the header video,frame,label and a row per frame)"),
        ("video,frame,label\n", "no rows (only a header)"),
        ("video,frame,label\n01,0,1\n,1,0\n", "row 3: the video id is empty"),
        ("video,frame,label\n01,0,1\n01,1,0.7\n", "line 3 (video 01): label 0.7 must be 0 or 1"),
        (  # past polars' 100-row type guess
            "video,frame,label\n" + "".join(f"01,{f},0\n" for f in range(150)) + "01,x,1\n",
            "line 152 (video 01): frame 'x' must be a whole number ≥ 0",
        ),
    ],
)
def test_every_label_file_refusal_is_one_line_naming_the_file(tmp_path: Path, content: str, message: str):
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(UsageError) as info:
        read_labels(path)
    assert str(info.value) == f"{path}: {message}"


def test_label_files_in_other_shapes_read_as_frame_labels(tmp_path: Path):
    with pytest.raises(UsageError, match=r": is a folder; give the labels CSV file$"):
        read_labels(tmp_path)
    floats = tmp_path / "floats.csv"  # a spreadsheet's export: whole numbers written as floats
    floats.write_text("video,frame,label\n01,0.0,1.0\n01,1,0\n")
    assert read_labels(floats).rows() == [("01", 0, 1), ("01", 1, 0)]
    assert read_labels(floats).schema == {"video": pl.String, "frame": pl.Int64, "label": pl.Int64}
    verdicts = tmp_path / "verdicts.csv"  # the review page's export
    verdicts.write_text("video,start_frame,end_frame,verdict\n01,2,3,reviewed\n02,0,0,false_alarm\n")
    assert read_labels(verdicts).rows() == [("01", 2, 1), ("01", 3, 1), ("02", 0, 0)]
    broken = tmp_path / "broken.csv"
    broken.write_text('video,frame,label\n"01,0,1\n')
    with pytest.raises(Exception) as polars_error:
        pl.read_csv(broken, schema_overrides={"video": pl.String}, infer_schema_length=None)
    with pytest.raises(UsageError) as info:
        read_labels(broken)  # the parser's first line, at most 200 characters
    assert str(info.value) == f"{broken}: cannot read as CSV: {str(polars_error.value).splitlines()[0][:200]}"
