"""``run.pool_app_reload: auto``: process tables in (as ``docker top`` gives them), reset out.

The tables are the ones the servers of ``tests/e2e/strangers/servers`` show on this
machine's Docker (pids as the host numbers them; the container's main process has a
parent outside the container, the shim).
"""

from __future__ import annotations

import time

import pytest

from nocrud.environment.reload import (
    Process,
    ResetClock,
    SignalRefusedError,
    choose,
    for_signal,
    last_renewal,
    reset_budget,
    run_line,
    workers,
)

SHIM = 1874
GUNICORN = "/usr/bin/python3 /usr/bin/gunicorn -b 0.0.0.0:8000 -w 2 tiny.wsgi"
PRELOADED_ARGS = "/usr/bin/python3 /nocrud-preload/launch.py -- uvicorn --port 8000 tiny.asgi:app"


def table(*rows: tuple[int, int, str] | Process) -> list[Process]:
    return [row if isinstance(row, Process) else Process(*row) for row in rows]


def gunicorn(args: str = GUNICORN, master: int = 1893, parent: int = SHIM) -> list[Process]:
    """A gunicorn master and its two workers (forks: the same command line)."""
    return table((master, parent, args), (master + 29, master, args), (master + 30, master, args))


SERVERS: dict[str, tuple[list[Process], str | None, str]] = {
    "gunicorn sync": (gunicorn(), "HUP", "gunicorn, a master with 2 workers"),
    "gunicorn sync --preload": (
        gunicorn(GUNICORN.replace("-w 2", "-w 2 --preload")),
        "HUP",
        "gunicorn, a master with 2 workers",
    ),
    "gunicorn gthread": (
        gunicorn(GUNICORN.replace("-w 2", "-w 2 -k gthread --threads 4")),
        "HUP",
        "gunicorn, a master with 2 gthread workers",
    ),
    "gunicorn --threads": (
        gunicorn(GUNICORN.replace("-w 2", "-w 2 --threads 4")),
        "HUP",
        "gunicorn, a master with 2 gthread workers",
    ),
    "gunicorn uvicorn workers": (
        gunicorn(GUNICORN.replace("-w 2", "-w 2 -k uvicorn.workers.UvicornWorker")),
        "HUP",
        "gunicorn, a master with 2 uvicorn workers",
    ),
    "gunicorn --worker-class=": (
        gunicorn(GUNICORN + " --worker-class=uvicorn.workers.UvicornWorker"),
        "HUP",
        "gunicorn, a master with 2 uvicorn workers",
    ),
    "gunicorn with setproctitle": (
        table(
            (10, SHIM, "gunicorn: master [tiny.wsgi]"),
            (11, 10, "gunicorn: worker [tiny.wsgi]"),
        ),
        "HUP",
        "gunicorn, a master with 1 worker",
    ),
    "python3 -m gunicorn": (
        gunicorn("python3 -u -X dev -m gunicorn -c /app/gunicorn.conf.py app:create_app()"),
        "HUP",
        "gunicorn, a master with 2 workers",
    ),
    "gunicorn behind tini": (
        table((5, SHIM, "/sbin/docker-init -- gunicorn app"), *gunicorn("gunicorn app", 6, 5)),
        "HUP",
        "gunicorn, a master with 2 workers",
    ),
    "uvicorn alone": (
        table((2089, SHIM, "/usr/bin/python3 /usr/bin/uvicorn --port 8000 tiny.asgi:app")),
        None,
        "uvicorn, one process serving requests",
    ),
    "uvicorn under nocrud's preloading launcher": (
        table(
            (80, SHIM, PRELOADED_ARGS),
            (81, 80, PRELOADED_ARGS),  # the forked server: the same command line
        ),
        "HUP",
        "uvicorn under nocrud's preloading launcher (1 server process)",
    ),
    "the launcher behind tini": (
        table(
            (90, SHIM, "/sbin/docker-init -- /bin/sh /nocrud-preload/start uvicorn app:app"),
            (91, 90, PRELOADED_ARGS),
            (92, 91, PRELOADED_ARGS),
            (93, 91, PRELOADED_ARGS),  # --workers 2: two servers
        ),
        "HUP",
        "uvicorn under nocrud's preloading launcher (2 server processes)",
    ),
    "uvicorn --workers": (
        table(
            (30, SHIM, "/usr/bin/python3 /usr/bin/uvicorn --workers 2 tiny.asgi:app"),
            (31, 30, "/usr/bin/python3 -c from multiprocessing.spawn import spawn_main"),
            (32, 30, "/usr/bin/python3 -c from multiprocessing.spawn import spawn_main"),
        ),
        None,
        "uvicorn with 2 child processes",
    ),
    "django runserver": (
        table(
            (2229, SHIM, "python3 manage.py runserver 0.0.0.0:8000"),
            (2257, 2229, "/usr/bin/python3 manage.py runserver 0.0.0.0:8000"),
        ),
        None,
        "Django's runserver with its autoreloader",
    ),
    "django runserver --noreload": (
        table((40, SHIM, "python3 -m django runserver --noreload 0.0.0.0:8000")),
        None,
        "Django's runserver --noreload, one process serving requests",
    ),
    "compiled binary": (
        table((50, SHIM, "notes serve")),
        None,
        "notes, one process serving requests",
    ),
    "shell wrapper around gunicorn": (
        table(
            (2327, SHIM, "sh -c until gunicorn -b 0.0.0.0:8000 -w 2 tiny.wsgi; do sleep 1; done"),
            *gunicorn(master=2357, parent=2327),
        ),
        None,
        "a shell (sh) running gunicorn",
    ),
    "bash wrapper, exec'd gunicorn is the main process": (
        gunicorn(),  # `bash -c "exec gunicorn …"`: the shell is gone
        "HUP",
        "gunicorn, a master with 2 workers",
    ),
    "an exec beside the app": (
        table((60, SHIM, "notes serve"), (70, 900, "cat /tmp/file")),
        None,
        "notes, one process serving requests",
    ),
    "nothing seen": (table(), None, "no process"),
}


@pytest.mark.parametrize("shape", list(SERVERS))
def test_auto_chooses_the_cheapest_reset_that_renews_the_process(shape: str) -> None:
    processes, signal, server = SERVERS[shape]
    reload = choose(processes)
    assert (reload.signal, reload.server) == (signal, server)
    assert reload.kind == (signal or "restart")


def test_a_hup_reset_watches_the_masters_children_not_the_wrappers() -> None:
    """Behind tini, the workers are gunicorn's children; tini's child (gunicorn) stays."""
    processes = SERVERS["gunicorn behind tini"][0]
    reload = choose(processes)
    assert reload.master == 6
    assert workers(processes, reload.master) == {35, 36}


def test_the_shell_wrapper_says_how_to_let_auto_use_a_signal() -> None:
    reload = choose(SERVERS["shell wrapper around gunicorn"][0])
    assert "not gunicorn" in reload.why
    assert "exec gunicorn" in reload.why


@pytest.mark.parametrize(
    ("shape", "words"),
    [
        ("shell wrapper around gunicorn", "reaches the shell, which does not pass it on"),
        ("django runserver", "passes no SIGHUP on"),
        ("uvicorn alone", "runs a single process"),
        ("compiled binary", "runs a single process"),
    ],
)
def test_an_explicit_signal_is_refused_where_it_is_known_not_to_work(
    shape: str, words: str
) -> None:
    """Item 21.12: HUP on a shell wrapper made every reset wait a minute; now it is an error."""
    with pytest.raises(SignalRefusedError) as caught:
        for_signal(SERVERS[shape][0], "HUP")
    assert words in str(caught.value)
    assert "run.pool_app_reload: auto" in str(caught.value)


def test_an_explicit_signal_to_an_unknown_master_with_workers_is_the_users_word() -> None:
    processes = SERVERS["uvicorn --workers"][0]
    reload = for_signal(processes, "USR2")
    assert (reload.signal, reload.master) == ("USR2", 30)
    assert for_signal(SERVERS["gunicorn sync"][0], "HUP").master == 1893


def test_a_reset_may_take_twice_the_boot_and_a_few_seconds_within_the_timeout() -> None:
    assert reset_budget(1.0, 60) == (7.0, 3.0)
    assert reset_budget(20.0, 30) == (30, 15.0)  # said before the deadline, always
    assert reset_budget(0.5, 4) == (4, 2.0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_slow_reset_says_what_it_waits_for_and_a_failed_one_that_the_pair_is_rebuilt() -> None:
    said: list[str] = []
    clock = Clock()
    with ResetClock(7.0, 3.0, said.append, "pair-1", clock=clock) as reset:
        reset.waiting_for("gunicorn (pid 12) to stop 2 worker(s) after SIGHUP")
        clock.now += 3.5
        assert reset.left() == pytest.approx(3.5)
        reset.slow()  # what the timer calls
        clock.now += 10
        assert reset.left() == pytest.approx(0.1)  # one last look, never a negative wait
        gave_up = reset.gave_up("the app did not renew its workers\nlogs…")
    assert said == [
        "pool: resetting pair-1 takes 3.5 s: waiting for gunicorn (pid 12) to stop 2 worker(s) "
        "after SIGHUP (rebuilt instead after 7 s)"
    ]
    assert gave_up == (
        "pool: reset of pair-1 abandoned after 13.5 s while waiting for gunicorn (pid 12) to "
        "stop 2 worker(s) after SIGHUP (the app did not renew its workers); rebuilding the pair"
    )


def test_the_slow_line_comes_from_a_timer_and_not_after_the_reset() -> None:
    said: list[str] = []
    with ResetClock(1.0, 0.01, said.append, "pair-2") as reset:
        reset.waiting_for("the app")
        for _ in range(200):
            if said:
                break
            time.sleep(0.01)
    assert len(said) == 1 and "waiting for the app" in said[0]
    quiet: list[str] = []
    with ResetClock(1.0, 0.2, quiet.append, "pair-3"):
        pass
    time.sleep(0.3)
    assert quiet == []


def test_the_runs_line_says_what_auto_chose_and_recommends_warm_for_a_full_boot() -> None:
    hup = choose(SERVERS["gunicorn sync"][0])
    single = choose(SERVERS["uvicorn alone"][0])
    assert run_line(hup, configured="auto", boot=1.2, warm=0, auto=None) == (
        "pool: the app is gunicorn, a master with 2 workers: each reset renews it by SIGHUP "
        "(SIGHUP makes the master fork new workers and stop the old ones, no restart)"
    )
    assert run_line(single, configured="auto", boot=1.24, warm=0, auto=None) == (
        "pool: the app is uvicorn, one process serving requests: each reset renews it by a "
        "restart of the app's container (only a restart renews it: each reset is a full "
        "boot); a restart costs a full boot (about 1.2 s here): --warm N (run.warm) overlaps "
        "those boots with other flows"
    )
    assert "--warm" not in run_line(single, configured="auto", boot=1.2, warm=2, auto=None)


def test_under_restart_the_line_speaks_only_where_auto_would_use_a_signal() -> None:
    restart = choose(SERVERS["uvicorn alone"][0])
    hup = choose(SERVERS["gunicorn sync"][0])
    line = run_line(restart, configured="restart", boot=1.0, warm=0, auto=hup)
    assert "run.pool_app_reload: auto would reset pairs with SIGHUP" in line
    assert run_line(restart, configured="restart", boot=1.0, warm=0, auto=restart) == ""
    assert run_line(restart, configured="restart", boot=1.0, warm=0, auto=None) == ""


def test_an_abandoned_reset_of_an_app_that_died_shows_its_last_log_lines() -> None:
    clock = ResetClock(10, 5, lambda line: None, "pair-1", clock=lambda: 0.0)
    logs = "\n".join(f"line {n}" for n in range(20))
    line = clock.gave_up(f"the app container exited with code 3 before becoming ready.\n"
                         f"Last app log lines:\n{logs}")  # fmt: skip
    first, *tail = line.splitlines()
    assert first.endswith("(the app container exited with code 3 before becoming ready.); "
                          "rebuilding the pair")  # fmt: skip
    assert tail == [f"    line {n}" for n in range(12, 20)]
    assert "\n" not in clock.gave_up("timed out")


@pytest.mark.parametrize(
    ("shape", "overlap"),
    [
        ("gunicorn sync", True),
        ("gunicorn gthread", True),
        ("python3 -m gunicorn", True),
        ("gunicorn uvicorn workers", False),
        ("uvicorn under nocrud's preloading launcher", False),
    ],
)
def test_only_workers_that_run_no_app_code_at_start_are_signalled_while_the_database_resets(
    shape: str, overlap: bool
) -> None:
    """An ASGI lifespan start-up may touch the database: those servers fork after its reset."""
    assert choose(SERVERS[shape][0]).overlap is overlap


def test_the_launchers_last_renewal_is_read_from_the_apps_log_lines() -> None:
    logs = "\n".join(
        [
            "nocrud-preload: the app is imported once; each reset forks a new server from it",
            "nocrud-preload: server pid 7 forked from the app as imported 0 s ago (renewal 0)",
            'INFO:     172.31.0.1:52114 - "GET /items/ HTTP/1.1" 200 OK',
            "nocrud-preload: server pid 9, 10 forked from the app as imported 12 s ago"
            " (renewal 11)",
            "INFO:     Application startup complete.",
        ]
    )
    assert last_renewal(logs) == 11
    assert last_renewal("INFO:     Started server process [33]") is None
    # A line the app printed that merely looks alike is not the launcher's.
    assert last_renewal("user said: server pid 1 forked (renewal 99)") is None
