"""DSPyBridge: DSPy programs built from host-owned definitions.

Programs and the LM configuration are *resources* (see BaseBridge.build_resource): the Go host
keeps their definitions and sends them to any worker that lacks them, so every worker can run
every program and a dead worker loses nothing. The legacy handlers (create_program,
configure_lm, ...) are thin conveniences over the same cache for standalone use.

The LM is never installed with `dspy.configure`: DSPy lets only the first configuring thread
change it again, and handlers run on a thread pool. Each execution runs inside
`dspy.context(lm=..., adapter=...)` instead, which is per-call and thread-safe.
"""

from __future__ import annotations

import time
from typing import Any

import dspy

from ..base_bridge import BaseBridge, handler
from ..errors import InvalidConfiguration, NotFound
from .dspy_lms import build_lm, map_error
from .dspy_programs import Program, build_program, check_inputs


class DSPyBridge(BaseBridge):
    framework_name = "dspy"
    framework_version = dspy.__version__
    capabilities = ("programs", "lm")
    # A local model serializes its calls on its one llama.cpp context; remote providers overlap
    # their waits. Pools can lower or raise it with Config.MaxInFlight.
    capacity = 8

    def _initialize_framework(self) -> None:
        self.lm: dspy.BaseLM | None = None
        self.adapter: dspy.Adapter | None = None

    # ------------------------------------------------------------ resources

    def build_resource(self, kind: str, id: str, spec: dict, state: bytes | None) -> Any:
        if kind == "program":
            return build_program(id, spec, state)
        if kind == "lm":
            lm, adapter = build_lm(spec)
            self.lm, self.adapter = lm, adapter  # every program on this worker uses it
            return lm
        return super().build_resource(kind, id, spec, state)

    def program(self, program_id: str) -> Program:
        r = self._resources.get(program_id)
        if r is None or r.kind != "program":
            raise NotFound(f"program {program_id!r} not found")
        return r.obj

    def execute_resource(self, kind: str, id: str, obj: Any, inputs: dict) -> Any:
        if kind != "program":
            return super().execute_resource(kind, id, obj, inputs)
        return self.run(obj, inputs)

    def describe_resource(self, kind: str, id: str, obj: Any) -> dict:
        return obj.info() if kind == "program" else {}

    def run(self, prog: Program, inputs: dict) -> dict:
        """One execution of a program on this worker's LM; DSPy failures mapped to categories."""
        check_inputs(prog.signature, inputs)
        if self.lm is None:
            raise InvalidConfiguration("no LM configured: call configure_lm (or define an 'lm' resource) first")
        try:
            with dspy.context(lm=self.lm, adapter=self.adapter):
                prediction = prog.module(**inputs)
        except Exception as e:
            raise map_error(e) from e
        return dict(prediction.toDict())

    # ------------------------------------------------------------ handlers

    @handler
    def execute_program(self, program_id: str, inputs: dict) -> dict:
        return self.run(self.program(program_id), inputs)

    @handler
    def time_program(self, program_id: str, inputs: dict, seconds: float = 1.0) -> list[float]:
        """Run a program directly in this process, one call after another, for `seconds`: the
        per-call times in seconds. It is the baseline `mlbridge bench --scenario dspy` measures
        ExecuteProgram against: the same program and LM, without the bridge."""
        prog = self.program(program_id)
        check_inputs(prog.signature, inputs)
        if self.lm is None:
            raise InvalidConfiguration("no LM configured")
        times: list[float] = []
        with dspy.context(lm=self.lm, adapter=self.adapter):
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                prog.module(**inputs)
                times.append(time.perf_counter() - t0)
        return times

    @handler
    def get_program_info(self, program_id: str) -> dict:
        return self.program(program_id).info()

    @handler
    def list_programs(self) -> list[str]:
        return [r.id for r in self.resources("program")]

    # Legacy conveniences for a worker used standalone; a host defines resources instead.
    @handler
    def create_program(self, program_id: str, signature: str, module: str = "Predict",
                       instructions: str = "") -> dict:
        spec = {"signature": signature, "module": module, "instructions": instructions}
        self.define_resource(program_id, "program", 1, spec)
        return self.program(program_id).info()

    @handler
    def delete_program(self, program_id: str) -> dict:
        self.program(program_id)
        return self.forget_resource(program_id)

    @handler
    def configure_lm(self, spec: dict) -> dict:
        self.define_resource("lm", "lm", 1, spec, is_global=True)
        return {"configured": True}
