"""FFmpeg's messages captured from fd 2 while decoders run: kept off the terminal and handed to
the reader whole, even when two decoder threads' writes interleave (FFmpeg writes a message's
prefix and its text separately). Run in a child process, whose fd 2 is a real pipe."""

from __future__ import annotations

import json
import subprocess
import sys

WRITES_THEN_RELEASE = """
import json, os, sys
from vadctl.video import native_stderr
held = native_stderr.hold()
taken = []
for part in json.loads(sys.argv[1]):
    if part == "<look>":
        taken += held.take()
    else:
        os.write(2, part.encode())
print(json.dumps(taken + held.release()))
"""


def captured(*writes: str) -> tuple[list[str], str]:
    """(lines the reader took, what reached the terminal) for these writes to fd 2; the reader
    takes what was captured at each "<look>" and when it lets go."""
    done = subprocess.run(
        [sys.executable, "-c", WRITES_THEN_RELEASE, json.dumps(writes)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout), done.stderr


def test_interleaved_prefixes_and_texts_of_two_decoder_threads_go_to_the_reader():
    taken, terminal = captured(
        "[mpeg4 @ 0x55d0a1] ",
        "[mpeg4 @ 0x55d0b2] ",
        "ac-tex damaged at 1 3\n",
        "Error at MB: 22\n",
        "another library's line\n",
    )
    assert taken == ["[mpeg4 @ 0x55d0b2] ac-tex damaged at 1 3", "[mpeg4 @ 0x55d0a1] Error at MB: 22"]
    assert terminal == "another library's line\n"


def test_a_text_that_comes_after_the_reader_looked_still_finds_its_prefix():
    taken, terminal = captured(
        "[h264 @ 0x1] ", "[h264 @ 0x2] ", "error while decoding MB 3 4\n", "<look>", "concealing 12 DC errors\n"
    )
    assert taken == ["[h264 @ 0x2] error while decoding MB 3 4", "[h264 @ 0x1] concealing 12 DC errors"]
    assert terminal == ""


def test_a_prefix_whose_text_never_came_leaves_nothing_behind():
    taken, terminal = captured("[h264 @ 0x1] [h264 @ 0x2] error while decoding MB 3 4\n")
    assert taken == ["[h264 @ 0x2] error while decoding MB 3 4"]
    assert terminal == ""


def test_plain_lines_and_text_before_a_prefix_reach_the_terminal_whole():
    taken, terminal = captured("libpng warning: iCCP\n", "partial [mpeg4 @ 0xab] header damaged\n")
    assert taken == ["[mpeg4 @ 0xab] header damaged"]
    assert terminal == "libpng warning: iCCP\npartial \n"
