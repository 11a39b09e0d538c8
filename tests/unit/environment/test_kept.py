"""What --keep-failed prints for a kept environment survives the reports' masking and works."""

from __future__ import annotations

import shlex

from nocrud.docker.postgres import DatabaseAddress
from nocrud.environment import describe_kept
from nocrud.masking import mask_text


def test_the_kept_lines_survive_masking_and_name_everything_needed() -> None:
    db = DatabaseAddress("127.0.0.1", 32769, "inventory", "inventory", "s3cr3t-Per-Env")
    text = describe_kept("http://127.0.0.1:32768", "/health", db, "nocrud-x-db, nocrud-x-app")
    shown = mask_text(text)  # what the terminal, JUnit and JSON reports print
    lines = [line.strip() for line in shown.splitlines()]
    assert "curl -i http://127.0.0.1:32768/health" in lines
    assert any(line.endswith("password s3cr3t-Per-Env") for line in lines), shown
    psql = next(line for line in lines if line.startswith("psql "))
    assert shlex.split(psql.split("   (", 1)[0]) == [
        "psql",
        "-h",
        "127.0.0.1",
        "-p",
        "32769",
        "-U",
        "inventory",
        "inventory",
    ]
    assert "containers: nocrud-x-db, nocrud-x-app" in lines
