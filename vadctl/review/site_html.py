"""The review page's HTML: an overview, the top events table, one entry per event, one timeline per
video. Rendered on the server side as plain HTML with `data-` attributes for the page's script, so
the page needs no data file (a browser will not fetch one from `file://`) and no network.

Every string that comes from the data (video ids, paths, model and class names, run ids, notes) goes
through `html.escape` here, whatever its origin: a video called `<script>…</script>.mp4` is text.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable

import polars as pl

from vadctl import __version__

NIGHTS_SHOWN = 14  # nights as columns of the camera table; older ones are summed in "earlier"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
)


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}g}"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _table(table_id: str, head: Iterable[str], rows: Iterable[tuple[dict, Iterable[str]]]) -> str:
    """A table; each row is (data attributes, already escaped cells)."""
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = []
    for attrs, cells in rows:
        data = "".join(f' data-{k}="{esc(v)}"' for k, v in attrs.items())
        body.append(f"<tr{data}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def overview(events: pl.DataFrame, cameras: dict[str, str]) -> str:
    """Counts of every selected event: per camera and night, per night, per model and class."""
    rows = events.select("scoring", "night", "model", "class").to_dicts()
    nights = sorted({str(r["night"]) for r in rows}, reverse=True)
    recent = nights[:NIGHTS_SHOWN]
    per_camera: dict[str, Counter] = {}
    for r in rows:
        night = str(r["night"])
        per_camera.setdefault(cameras.get(r["scoring"], ""), Counter())[night if night in recent else "earlier"] += 1
    columns = recent + (["earlier"] if len(nights) > len(recent) else [])
    camera_rows = [
        ({"camera": camera}, [esc(camera or "–"), *(str(counts.get(n, 0)) for n in columns), str(counts.total())])
        for camera, counts in sorted(per_camera.items())
    ]
    by_night = Counter(str(r["night"]) for r in rows)
    by_model = Counter((r["model"] or "", r["class"] or "") for r in rows)
    videos = events.select("video", "model").unique().height
    return (
        '<section id="overview"><h2>Overview</h2>'
        f'<p id="totals"><span id="total-events">{len(rows)}</span> event(s) in {videos} scored video(s) '
        f"over {len(nights)} night(s).</p>"
        '<div class="counts"><div><h3>Events per camera and night</h3>'
        + _table("by-camera", ["camera/folder", *columns, "total"], camera_rows)
        + "</div><div><h3>Events per night</h3>"
        + _table("by-night", ["night", "events"], [({"night": n}, [esc(n), str(by_night[n])]) for n in nights])
        + "</div><div><h3>Events per model and class</h3>"
        + _table(
            "by-model",
            ["model", "class", "events"],
            [
                ({"model": m, "class": c}, [esc(m or "–"), esc(c or "–"), str(n)])
                for (m, c), n in sorted(by_model.items())
            ],
        )
        + "</div></div></section>"
    )


def _search_text(event: dict, camera: str) -> str:
    return " ".join(str(event.get(k) or "") for k in ("video", "model", "class", "run_id", "night")) + " " + camera


def top_table(shown: list[dict], cameras: dict[str, str]) -> str:
    head = ["video", "model", "class", "night", "time", "length", "peak score", "verdict"]
    sortable = {"video": "video", "time": "time", "length": "length", "peak score": "peak"}
    header = "".join(
        f'<th><button type="button" data-sort="{sortable[h]}">{esc(h)}</button></th>'
        if h in sortable
        else f"<th>{h}</th>"
        for h in head
    )
    body = []
    for e in shown:
        attrs = {
            "key": e["key"],
            "video": e["video"],
            "time": e.get("start_s") if e.get("start_s") is not None else e["start_frame"],
            "length": e["n_frames"],
            "peak": e["peak_score"],
            "search": _search_text(e, cameras.get(e["scoring"], "")).lower(),
        }
        data = "".join(f' data-{k}="{esc(v)}"' for k, v in attrs.items())
        cells = [
            f'<a href="#e-{e["key"]}">{esc(e["video"])}</a>',
            esc(e.get("model") or "–"),
            esc(e.get("class") or "–"),
            esc(e.get("night") or "–"),
            f"{esc(_seconds(e.get('start_s')))} (frame {e['start_frame']})",
            f"{e['n_frames']} frames",
            esc(_number(e.get("peak_score"))),
            '<span class="verdict-cell"></span>',
        ]
        body.append(f"<tr{data}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return (
        '<section id="top"><h2>Top events</h2>'
        f'<table id="events-table"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table></section>'
    )


def entry(e: dict, facts: dict, rendered: dict) -> str:
    """One event: pictures, timeline, provenance and the verdict buttons."""
    key = e["key"]
    base = f"events/{key}"
    note = rendered.get("note")
    clip = f"{base}/clip.webp" if rendered.get("media") else ""
    seconds = f"{_seconds(e.get('start_s'))}–{_seconds(e.get('end_s'))}"
    span = f"frames {e['start_frame']}–{e['end_frame']} ({e['n_frames']}), {seconds}"
    pictures = (
        f'<img class="strip" src="{base}/strip.png" loading="lazy" alt="first, peak and last frame of the event">'
        if rendered.get("media")
        else ""
    )
    timeline = (
        f'<img class="timeline" src="{base}/timeline.svg" loading="lazy" alt="score timeline with the event shaded">'
        if rendered.get("timeline")
        else ""
    )
    facts_rows = [
        ("video path", facts.get("source") or "–"),
        ("camera/folder", facts.get("camera") or "–"),
        ("model", e.get("model") or "–"),
        ("model sha256", e.get("model_sha256") or "–"),
        ("run id", e.get("run_id") or "–"),
        ("night", e.get("night") or "–"),
        ("class", e.get("class") or "–"),
        (
            "peak",
            f"frame {e['peak_frame']}, score {_number(e.get('peak_score'))}, threshold {_number(e.get('threshold'))}",
        ),
    ]
    details = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts_rows)
    attrs = {
        "key": key,
        "video": e["video"],
        "start": e["start_frame"],
        "end": e["end_frame"],
        "clip": clip,
        "search": _search_text(e, facts.get("camera") or "").lower(),
    }
    data = "".join(f' data-{k}="{esc(v)}"' for k, v in attrs.items())
    return (
        f'<article class="event" id="e-{key}"{data}>'
        f'<h3><span class="video-name">{esc(e["video"])}</span> <small>{esc(span)}</small></h3>'
        + (f'<p class="note">{esc(note)}</p>' if note else "")
        + pictures
        + ('<p><button type="button" class="open-clip">play clip (o)</button></p>' if clip else "")
        + timeline
        + f'<dl class="facts">{details}</dl>'
        + f'<p class="links"><a href="#v-{e["scoring"]}">whole video timeline</a></p>'
        + '<p class="verdict"><button type="button" data-verdict="reviewed">mark reviewed</button> '
        '<button type="button" data-verdict="false_alarm">false alarm</button> <span class="verdict-text"></span></p>'
        "</article>"
    )


def video_section(scorings: list[dict], events: pl.DataFrame, rendered: set[str]) -> str:
    counts = Counter(events["scoring"].to_list())
    parts = []
    for s in scorings:
        image = (
            f'<img src="videos/{s["scoring"]}.svg" loading="lazy" alt="score timeline with every event marked">'
            if s["scoring"] in rendered
            else '<p class="note">no frame scores for this video</p>'
        )
        parts.append(
            f'<article class="video" id="v-{s["scoring"]}"><h3>{esc(s["video"])} <small>{esc(s.get("model"))}, '
            f"run {esc(s.get('run_id'))}: {counts[s['scoring']]} event(s)</small></h3>{image}</article>"
        )
    return '<section id="videos"><h2>Videos</h2>' + "".join(parts) + "</section>"


def page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        '<link rel=stylesheet href="assets/review.css"><script src="assets/review.js" defer></script></head><body>'
        f"<header><h1>{esc(title)}</h1>"
        '<p class="tools"><input id="filter" type="search" placeholder="filter: video, model, class, camera, night" '
        'aria-label="filter events"> <button type="button" id="export">export verdicts (CSV)</button> '
        '<span class="help">j/k: next/previous event, o: play its clip, Esc: close</span></p></header>'
        f"<main>{body}</main>"
        '<dialog id="clip-dialog"><p id="clip-title"></p><img id="clip-img" alt="event clip">'
        '<p><button type="button" id="clip-close">close (Esc)</button></p></dialog>'
        f"<footer>vadctl {esc(__version__)}</footer></body></html>\n"
    )
