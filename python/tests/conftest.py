import os
import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

from client import Worker, worker_env  # noqa: E402


@pytest.fixture
def worker():
    """An echo worker past its handshake."""
    w = Worker()
    try:
        w.hello()
        yield w
    finally:
        w.kill()


@pytest.fixture
def make_worker():
    """Start workers with options; all are killed at teardown."""
    started = []

    def make(*args, **kw):
        env = kw.pop("env", None)
        if env is None:
            env = worker_env()
        # the test bridges live in tests/
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH", "")]))
        w = Worker(*args, env=env, **kw)
        started.append(w)
        return w

    yield make
    for w in started:
        w.kill()
