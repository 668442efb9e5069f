"""The legacy entry point `python python/dspy_bridge.py` still starts the DSPy bridge."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from client import Worker, worker_env

SCRIPT = str(pathlib.Path(__file__).resolve().parents[1] / "dspy_bridge.py")


def test_standalone_runs_dspy_programs():
    with Worker(cmd=[sys.executable, SCRIPT]) as w:
        h = w.hello()
        assert h["framework"]["name"] == "dspy"
        w.ok("configure_lm", {"spec": {"provider": "dummy", "answers": [{"answer": "4"}]}})
        info = w.ok("create_program", {"program_id": "math", "signature": "question -> answer: int"})
        assert info["outputs"] == [{"name": "answer", "type": "int", "desc": ""}]
        assert w.ok("execute_program", {"program_id": "math", "inputs": {"question": "2+2?"}}) == {"answer": 4}


def test_pool_worker_names_itself_in_its_log():
    with Worker(cmd=[sys.executable, SCRIPT, "--mode", "pool-worker", "--worker-id", "w7", "--threads", "2"]) as w:
        w.hello()
        w.send({"t": "hello", "versions": [1]})  # a second hello is ignored, and logged
        # one log record (mlbridge_worker/log.py) naming the worker
        assert '"msg":"ignored a second hello","worker":"w7"}' in w.wait_stderr("ignored a second hello")


def test_pool_worker_needs_an_id():
    p = subprocess.run([sys.executable, SCRIPT, "--mode", "pool-worker"], env=worker_env(),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "--worker-id is required" in p.stderr
