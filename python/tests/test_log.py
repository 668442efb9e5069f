"""The worker's log records on stderr (mlbridge_worker/log.py): one marked JSON line each."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mlbridge_worker import log as wlog


def parse(line: str) -> dict:
    """The record in one written line; fails unless it is exactly one marked line."""
    assert line.startswith(wlog.MARKER), line
    assert line.endswith("\n") and line.count("\n") == 1, line
    rec = json.loads(line[len(wlog.MARKER):])
    assert isinstance(rec, dict)
    return rec


def test_record_is_one_line_with_level_logger_and_message():
    line = wlog.format_record(30, "httpx", 'two\nlines, "quoted" \x1b[31m and ü', "Traceback (most recent call last):\n  x")
    assert parse(line) == {
        "level": 30, "logger": "httpx", "msg": 'two\nlines, "quoted" \x1b[31m and ü',
        "exc": "Traceback (most recent call last):\n  x",
    }
    assert "exc" not in parse(wlog.format_record(20, "a", "m"))


def test_long_record_fits_the_host_line_bound():
    msg = "m" * 200_000
    exc = "Traceback (most recent call last):\n" + "f" * 200_000 + "\nValueError: the end"
    line = wlog.format_record(40, "app", msg, exc)
    assert len(line.encode()) <= wlog.MAX_RECORD_BYTES
    rec = parse(line)
    assert rec["msg"].startswith("mmmm") and "…[truncated " in rec["msg"]
    assert rec["exc"].endswith("ValueError: the end") and rec["exc"].startswith("…[truncated ")
    wide = wlog.format_record(40, "app", "é" * 100_000 + "\udcff" * 10_000)
    assert len(wide.encode("utf-8", "backslashreplace")) <= wlog.MAX_RECORD_BYTES


def test_handler_writes_logging_records():
    out = io.StringIO()
    lg = logging.getLogger("mlbridge.test.handler")
    h = wlog.HostHandler(out)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))  # not used: the host formats
    lg.addHandler(h)
    lg.propagate = False
    lg.setLevel(logging.DEBUG)
    try:
        lg.warning("hello %s\nsecond line", "there")
        try:
            raise KeyError("k")
        except KeyError:
            lg.exception("failed")
        lg.log(25, "custom")
    finally:
        lg.removeHandler(h)
        lg.setLevel(logging.NOTSET)
    lines = out.getvalue().splitlines(keepends=True)
    assert len(lines) == 3, lines
    first, second, third = (parse(x) for x in lines)
    assert first == {"level": 30, "logger": "mlbridge.test.handler", "msg": "hello there\nsecond line"}
    assert second["level"] == 40 and second["msg"] == "failed"
    assert second["exc"].startswith("Traceback (most recent call last):") and second["exc"].endswith("KeyError: 'k'")
    assert third["level"] == 25


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> logging.Logger:
    """log.py as before install(), and a root logger of its own with no handlers (the real
    root holds pytest's); mlbridge_worker's logger is restored after."""
    own = logging.getLogger(wlog.LOGGER_NAME)
    monkeypatch.setattr(wlog, "_handler", None)
    monkeypatch.setattr(own, "handlers", [])
    monkeypatch.setattr(own, "propagate", own.propagate)
    monkeypatch.setattr(own, "level", own.level)
    monkeypatch.delenv("MLBRIDGE_WORKER_ID", raising=False)
    return logging.RootLogger(logging.WARNING)


def test_install_on_a_bare_root(fresh: logging.Logger):
    out = io.StringIO()
    h = wlog.install(out, env={}, root=fresh)
    assert wlog.install(io.StringIO(), env={}, root=fresh) is h  # idempotent
    assert fresh.handlers == [h] and fresh.level == logging.WARNING
    fresh.info("not shown")  # Python's default level: WARNING
    fresh.warning("shown")
    wlog.log("own line")  # mlbridge's own lines from INFO
    wlog.log("own error", logging.ERROR, "Traceback (most recent call last):\n  y")
    recs = [parse(x) for x in out.getvalue().splitlines(keepends=True)]
    assert recs == [
        {"level": 30, "logger": "root", "msg": "shown"},
        {"level": 20, "logger": "mlbridge_worker", "msg": "own line"},
        {"level": 40, "logger": "mlbridge_worker", "msg": "own error", "exc": "Traceback (most recent call last):\n  y"},
    ]


def test_install_keeps_an_existing_config_and_reads_the_level(fresh: logging.Logger):
    theirs = logging.StreamHandler(io.StringIO())
    fresh.addHandler(theirs)
    out = io.StringIO()
    wlog.install(out, env={wlog.LEVEL_ENV: "debug"}, root=fresh)
    assert fresh.handlers == [theirs] and fresh.level == logging.DEBUG
    fresh.debug("theirs")
    wlog.log("ours", logging.DEBUG)
    assert out.getvalue().count("\n") == 1 and parse(out.getvalue())["msg"] == "ours"


def test_bridge_config_replaces_our_root_handler(fresh: logging.Logger):
    out = io.StringIO()
    h = wlog.install(out, env={}, root=fresh)
    theirs = logging.StreamHandler(io.StringIO())
    fresh.addHandler(theirs)  # the bridge module configured logging
    wlog.yield_to_user_config(fresh)
    assert fresh.handlers == [theirs]
    wlog.log("still ours")
    assert parse(out.getvalue())["msg"] == "still ours"
    assert h in logging.getLogger(wlog.LOGGER_NAME).handlers


def test_bad_level_env_is_reported(fresh: logging.Logger):
    out = io.StringIO()
    wlog.install(out, env={wlog.LEVEL_ENV: "loud"}, root=fresh)
    rec = parse(out.getvalue())
    assert rec["level"] == logging.WARNING and "MLBRIDGE_LOG_LEVEL" in rec["msg"]
    assert fresh.level == logging.WARNING


@pytest.mark.parametrize("text, want", [("INFO", 20), ("warning", 30), (" 15 ", 15), ("", None), ("loud", None)])
def test_parse_level(text: str, want: int | None):
    assert wlog.parse_level(text) == want
