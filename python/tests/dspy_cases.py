"""DSPy programs with DummyLM answers and inputs, shared by the tests that compare two ways of
running them (direct DSPy against the worker; sync against async)."""

DSPY = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"

# (module, signature, DummyLM answers, inputs): one input per answer
CASES = [
    ("Predict", "question -> answer", [{"answer": "Paris"}, {"answer": "Rome"}],
     [{"question": "capital of France?"}, {"question": "capital of Italy?"}]),
    ("ChainOfThought", "context: list[str], question: str -> answer: str, confidence: float",
     [{"reasoning": "stated in the context", "answer": "Paris", "confidence": "0.9"},
      {"reasoning": "not stated", "answer": "unknown", "confidence": "0.1"}],
     [{"context": ["Paris is in France."], "question": "capital?"}, {"context": [], "question": "why?"}]),
    ("Predict", "text -> keywords: list[str], count: int, positive: bool",
     [{"keywords": '["a", "b"]', "count": "2", "positive": "true"}], [{"text": "a b"}]),
]
