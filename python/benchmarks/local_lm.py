"""Tokens per second of the embedded local LM (SmolLM2-135M-Instruct on llama.cpp) on this
machine, under a real DSPy ChainOfThought program with JSON-schema constrained output.

Run: .venv/bin/python python/benchmarks/local_lm.py [--calls N] [--threads T]
Prints one JSON line: load time, per-call seconds, prompt and completion tokens per second.
One process, one llama.cpp context: a pool's throughput is this times its workers, up to cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import dspy

from mlbridge_worker.frameworks.local_lm import LocalLM

QUESTIONS = ["What is the capital of France?", "What do bees make?", "How many legs does a spider have?",
             "Which planet do we live on?", "What is frozen water called?", "What color is grass?"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=12)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    t0 = time.perf_counter()
    lm = LocalLM(n_threads=a.threads, max_tokens=160)
    load_s = time.perf_counter() - t0
    program = dspy.ChainOfThought(dspy.Signature("question: str -> answer: str", "Answer in a few words."))
    times, prompt, completion = [], 0, 0
    with dspy.context(lm=lm, adapter=dspy.JSONAdapter()):
        program(question="warm up")
        for i in range(a.calls):
            t = time.perf_counter()
            program(question=QUESTIONS[i % len(QUESTIONS)])
            times.append(time.perf_counter() - t)
            usage = lm.history[-1]["usage"]
            prompt += usage["prompt_tokens"]
            completion += usage["completion_tokens"]
    total = sum(times)
    print(json.dumps({
        "model": "SmolLM2-135M-Instruct.Q4_1", "threads": a.threads, "calls": a.calls,
        "load_s": round(load_s, 3), "call_p50_s": round(statistics.median(times), 3),
        "prompt_tokens_per_call": prompt // a.calls, "completion_tokens_per_call": completion // a.calls,
        "tokens_per_s": round((prompt + completion) / total, 1), "completion_tokens_per_s": round(completion / total, 1),
    }))


if __name__ == "__main__":
    main()
