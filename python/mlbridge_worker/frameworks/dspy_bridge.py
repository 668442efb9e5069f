"""DSPyBridge: DSPy programs built from host-owned definitions.

Programs and the LM configuration are *resources* (see BaseBridge.build_resource): the Go host
keeps their definitions and sends them to any worker that lacks them, so every worker can run
every program and a dead worker loses nothing. The legacy handlers (create_program,
configure_lm, ...) are thin conveniences over the same cache for standalone use.

The LM is never installed with `dspy.configure`: DSPy lets only the first configuring thread
change it again, and handlers run on a thread pool. Each execution runs inside
`dspy.context(lm=..., adapter=...)` instead, which is per-call and thread-safe.

Execution has two implementations behind the per-op switch (`set_handler_mode`, or the
`handler_modes` bridge option): the sync one (the default; a handler thread runs `module(...)`)
and the async one (`await module.acall(...)` on the worker's event loop). Both check inputs the
same way, return the same fields and map DSPy's errors to the same categories.
`stream_program` streams a program's output fields token by token (see dspy_stream.py).

A program's state (an optimizer's result, or an imported program: DSPy's dump_state JSON) is
the definition's State, loaded when the program is built. `optimize_program` (a sync generator:
long work on the runtime's thread pool, progress streamed, cancellable), `evaluate_program` and
`export_program` are in dspy_optimize.py and dspy_programs.py; the modules in dspy_modules.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import dspy

from ..base_bridge import BaseBridge, alternative, handler
from ..errors import InvalidConfiguration, NotFound
from .dspy_lms import build_lm, map_error
from .dspy_metrics import GoFailed
from .dspy_optimize import Run, evaluate, optimize, run_streaming
from .dspy_programs import Program, build_program, check_inputs, export_state
from .dspy_stream import stream_module

# Values Prediction.toDict returns as they are: a prediction of these alone is copied as is.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def fields(prediction: dspy.Prediction) -> dict:
    """The prediction's output fields as a new dict: ``prediction.toDict()``, without its
    per-value conversion calls when every value is a plain scalar (most predictions)."""
    store = getattr(prediction, "_store", None)
    if type(store) is dict and all(type(v) in _PLAIN for v in store.values()):
        return dict(store)
    return prediction.toDict()


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
        if kind == "program":
            return obj.info()
        if kind == "lm":
            info: dict[str, Any] = {"model": obj.model, "adapter": type(self.adapter).__name__}
            # The local model counts the tokens it sampled (stats; tests see a stopped generation).
            tokens = getattr(getattr(obj, "engine", None), "tokens_generated", None)
            if tokens is not None:
                info["tokens_generated"] = tokens
            return info
        return {}

    def _ready(self, prog: Program, inputs: dict) -> tuple[dspy.BaseLM, dspy.Adapter | None]:
        """The checks before any LM call (inputs of the declared types, an LM to run on), and the
        LM with its adapter, read together: a concurrent reconfiguration replaces both."""
        prog.check_inputs(inputs)
        lm, adapter = self.lm, self.adapter
        if lm is None:
            raise InvalidConfiguration("no LM configured: call dspy.Client.ConfigureLM from Go first (it defines "
                                       "the global 'lm' resource; configure_lm in Python)")
        return lm, adapter

    def run(self, prog: Program, inputs: dict) -> dict:
        """One execution of a program on this worker's LM; DSPy failures mapped to categories."""
        lm, adapter = self._ready(prog, inputs)
        try:
            with dspy.context(lm=lm, adapter=adapter):
                prediction = prog.module(**inputs)
        except GoFailed as e:  # a Go reward failed, or a Go tool was cancelled: its typed error
            raise e.error from None
        except Exception as e:
            raise map_error(e) from e
        return fields(prediction)

    async def arun(self, prog: Program, inputs: dict) -> dict:
        """:meth:`run` on DSPy's async API, awaited on the worker's event loop. The LM's own async
        engine keeps the loop free (the local LM runs llama.cpp on a thread)."""
        lm, adapter = self._ready(prog, inputs)
        try:
            with dspy.context(lm=lm, adapter=adapter):
                prediction = await prog.module.acall(**inputs)
        except GoFailed as e:  # a cancelled Go tool: the cancel, not an observation (dspy_tools.py)
            raise e.error from None
        except Exception as e:  # not BaseException: a cancelled call stays cancelled
            raise map_error(e) from e
        return fields(prediction)

    # ------------------------------------------------------------ handlers

    @handler
    def execute_program(self, program_id: str, inputs: dict) -> dict:
        return self.run(self.program(program_id), inputs)

    @alternative("execute_program")
    async def execute_program_async(self, program_id: str, inputs: dict) -> dict:
        return await self.arun(self.program(program_id), inputs)

    @handler
    def execute(self, id: str, inputs: dict | None = None) -> Any:
        """The generic `execute` op (Adapter.Execute, what dspy.Client.ExecuteProgram sends): a
        program straight to :meth:`run`, anything else as BaseBridge runs it."""
        r = self._resources.get(id)
        if r is not None and r.kind == "program":
            return self.run(r.obj, inputs or {})
        return super().execute(id, inputs)

    @alternative("execute")
    async def execute_async(self, id: str, inputs: dict | None = None) -> Any:
        """The generic `execute` op (Adapter.Execute), with programs run by :meth:`arun`."""
        self.resource(id)  # NotFound, worded as the sync op words it
        r = self._resources[id]
        if r.kind != "program":
            return self.execute_resource(r.kind, id, r.obj, inputs or {})
        return await self.arun(r.obj, inputs or {})

    @handler
    async def stream_program(self, program_id: str, inputs: dict) -> AsyncIterator[dict]:
        """Run a program and stream its output as the LM writes it.

        Chunks, in order:
          - ``{"field": name, "text": token_text}``: a piece of an output field's value, as a
            stream listener per output field cuts it from the LM's tokens (ChainOfThought's
            ``reasoning`` included, first). Fields come one after the other. Joined, a string
            field's pieces are its text; with the JSON adapter a non-string value (number,
            bool, list) is one piece, its JSON text, once complete. Never empty.
          - last, once: ``{"prediction": {...}}``, the output fields as execute_program returns
            them.
        An LM that answers in one piece with the chat adapter (DummyLM) yields the prediction
        alone. Errors are those of execute_program, raised before the first chunk
        for bad inputs. When the host stops reading (break, or its ctx ends) the worker cancels
        this task and the LM call with it: the local model stops at its next token.
        """
        prog = self.program(program_id)
        lm, adapter = self._ready(prog, inputs)
        try:
            async for chunk in stream_module(prog.module, lm, adapter, inputs):
                yield chunk
        except GoFailed as e:
            raise e.error from None
        except Exception as e:
            raise map_error(e) from e

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

    def _lm(self) -> tuple[dspy.BaseLM, dspy.Adapter | None]:
        lm, adapter = self.lm, self.adapter
        if lm is None:
            raise InvalidConfiguration("no LM configured: call dspy.Client.ConfigureLM from Go first")
        return lm, adapter

    @handler
    def optimize_program(self, program_id: str, optimizer: str, trainset: list, metric: dict,
                         valset: list | None = None, options: dict | None = None,
                         input_keys: list | None = None) -> Iterator[dict]:
        """Compile a copy of the program with a DSPy optimizer, streaming progress (see
        dspy_optimize.py); the last chunk is ``{"result": {"state", "demos", ...}}``, the
        state the host stores as the program's next version. This worker's cached program is
        left as it is: the new version replaces it on every worker once stored."""
        prog = self.program(program_id)
        lm, adapter = self._lm()
        opts = options or {}
        yield from run_streaming(lambda run: self._mapped(
            optimize, prog, lm, adapter, optimizer, trainset, valset, metric, opts, input_keys, run))

    @handler
    def evaluate_program(self, program_id: str, devset: list, metric: dict,
                         input_keys: list | None = None) -> dict:
        """DSPy's Evaluate on ``devset``: ``{"score", "results": [{"prediction", "score", "failed"}]}``."""
        prog = self.program(program_id)
        lm, adapter = self._lm()
        return self._mapped(evaluate, prog, lm, adapter, devset, metric, input_keys, Run())

    @handler
    def export_program(self, program_id: str) -> bytes:
        """The program's state as the JSON DSPy's `Module.save("p.json")` writes: `dump_state()`
        plus the `metadata` (dependency versions) that DSPy's `Module.load` requires."""
        return export_state(self.program(program_id).module)

    @staticmethod
    def _mapped(fn, *args):
        try:
            return fn(*args)
        except GoFailed as e:  # a Go metric or reward failed: its typed error
            raise e.error from None
        except Exception as e:  # not Cancelled (a BaseException): the host already has its answer
            raise map_error(e) from e

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
