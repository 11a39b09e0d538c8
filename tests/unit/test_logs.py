"""App log lines collapsed for people (issue 21 item 11): a readiness poll's forty
identical access-log lines, time stamps aside, become one line with a count."""

from __future__ import annotations

from nocrud.logs import collapse_repeats

POLL = '172.26.0.1 - - [04/Dec/2026:14:42:0{s} +0000] "GET /health HTTP/1.1" 404 207 "-" "x"'


def test_lines_differing_only_in_their_time_stamps_are_said_once_with_a_count() -> None:
    boot = "[2026-12-04 14:42:05 +0000] [1] [INFO] Listening at: http://0.0.0.0:8000 (1)"
    polls = [POLL.format(s=6)] * 26 + [POLL.format(s=7)] * 14
    text = "\n".join([boot, *polls, "worker exiting"]) + "\n"
    assert collapse_repeats(text) == f"{boot}\n{POLL.format(s=6)}  (40 times)\nworker exiting\n"


def test_short_runs_and_lines_that_differ_otherwise_stay() -> None:
    text = "\n".join(
        ["GET /items/1 200", "GET /items/2 200", "same", "same", "2026-12-04T14:42:06Z a"]
    )
    assert collapse_repeats(text) == text
    iso = "\n".join(f"2026-12-04T14:42:0{s}.12{s}Z retrying connection" for s in range(5))
    assert collapse_repeats(iso) == "2026-12-04T14:42:00.120Z retrying connection  (5 times)"
