"""SklearnBridge: scikit-learn models as host-owned resources of kind "model".

A definition names an allowlisted estimator or pipeline (sklearn_specs); after ``fit`` the host
stores the returned ``state`` in the definition, so any worker can rebuild the trained model and
a dead worker loses nothing. Arrays travel in the binary format of :mod:`mlbridge_worker.arrays`.

Handlers are plain ``def``: sklearn is CPU-bound and mostly releases the GIL in its native code,
so they belong on the worker's thread pool.

``predict``, ``predict_proba`` and ``transform`` are batched (``@batched``): the host gathers
concurrent calls and the handler stacks their rows into one X per model, makes one sklearn
call, and splits the output back by rows. sklearn's fixed cost per call (input validation, the
estimator's setup) dominates a one-row call, so one call on 64 rows costs little more than one
on a single row. A caller's bad input fails that caller alone: items that cannot be stacked
(another feature count, not 2-D) are served alone, and a stacked call that fails (one bad row)
is made again item by item so that each caller gets its own answer.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import sklearn  # imported here, not lazily: a preloading zygote forks after this import
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline

from ..arrays import from_wire, to_wire
from ..base_bridge import BaseBridge, Resource, batched, handler
from ..errors import InvalidArgument
from .sklearn_specs import Model, build_model, class_names, dataset, dumps, is_fitted, loads


#: the batching of predict, predict_proba and transform: up to 64 calls per sklearn call, and a
#: lone call waits at most 2 ms for company (docs/BENCHMARKS.md, scenario batch)
BATCH_MAX_SIZE = 64
BATCH_MAX_WAIT_MS = 2


class SklearnBridge(BaseBridge):
    framework_name = "sklearn"
    framework_version = sklearn.__version__
    capabilities = ("models",)
    # CPU-bound: more concurrent calls than cores only queue inside the process.
    capacity = os.cpu_count() or 4

    def _initialize_framework(self) -> None:
        pass  # nothing global to configure; the import above is the expensive part

    # ------------------------------------------------------------ resources

    def build_resource(self, kind: str, id: str, spec: dict, state: bytes | None) -> Any:
        if kind != "model":
            return super().build_resource(kind, id, spec, state)
        return build_model(spec) if state is None else loads(state, spec)

    def execute_resource(self, kind: str, id: str, obj: Any, inputs: dict) -> Any:
        if kind != "model":
            return super().execute_resource(kind, id, obj, inputs)
        if not isinstance(inputs, dict) or inputs.keys() != {"X"}:
            raise InvalidArgument(f"executing model {id!r} takes inputs {{\"X\": array}}")
        return self._apply(id, obj, "predict", inputs["X"])

    def describe_resource(self, kind: str, id: str, obj: Any) -> dict:
        if kind != "model":
            return {}
        names = class_names(obj)
        params = {k: v for k, v in obj.get_params(deep=False).items()
                  if v is None or type(v) in (str, int, float, bool)}
        return {"estimator": names if isinstance(obj, Pipeline) else names[0],
                "fitted": is_fitted(obj), "params": params}

    def _entry(self, model_id: str) -> Resource:
        self.resource(model_id, kind="model")  # NotFound unless defined
        return self._resources[model_id]

    # ------------------------------------------------------------ handlers

    @handler
    def fit(self, model_id: str, X: Any = None, y: Any = None, dataset: str | None = None) -> dict:
        """Train a fresh copy of the model (its definition's params) on X, y or a bundled dataset;
        it replaces the cached model. ``state`` is what the host stores in the definition."""
        entry = self._entry(model_id)
        if dataset is not None:
            if X is not None or _given(y):
                raise InvalidArgument("fit takes either X (and y) or dataset, not both")
            Xa, ya = _dataset(dataset)[:2]
        elif X is None:
            raise InvalidArgument("fit needs X (and y for supervised estimators) or dataset")
        else:
            Xa, ya = from_wire(X, "X"), (from_wire(y, "y") if _given(y) else None)
        # A clone, not the cached object: calls running on the old model are unaffected and
        # concurrent fits do not write into one estimator.
        model = clone(entry.obj)
        with _sklearn_errors(model_id):
            model.fit(Xa, ya)
            score = getattr(model, "score", None)  # transformers have none
            train_score = float(score(Xa, ya)) if score is not None else None
        state = dumps(model)
        entry.obj = model
        classes = getattr(model, "classes_", None)
        if isinstance(classes, list):  # multi-output: one array per output
            classes = [np.asarray(c).tolist() for c in classes]
        elif classes is not None:
            classes = np.asarray(classes).tolist()
        return {"state": state, "n_samples": int(Xa.shape[0]), "n_features": int(Xa.shape[1]),
                "classes": classes, "train_score": train_score}

    # The ops predict, predict_proba and transform are batched: each takes a list of
    # {"model_id": str, "X": array} (one per caller) and returns one array, or that caller's
    # exception, per item. The methods of the same names stay the one-call Python API.
    @handler("predict")
    @batched(max_size=BATCH_MAX_SIZE, max_wait_ms=BATCH_MAX_WAIT_MS)
    def predict_batch(self, items: list[dict]) -> list[Any]:
        return self._apply_batch("predict", items)

    @handler("predict_proba")
    @batched(max_size=BATCH_MAX_SIZE, max_wait_ms=BATCH_MAX_WAIT_MS)
    def predict_proba_batch(self, items: list[dict]) -> list[Any]:
        return self._apply_batch("predict_proba", items)

    @handler("transform")
    @batched(max_size=BATCH_MAX_SIZE, max_wait_ms=BATCH_MAX_WAIT_MS)
    def transform_batch(self, items: list[dict]) -> list[Any]:
        return self._apply_batch("transform", items)

    def predict(self, model_id: str, X: Any) -> dict:
        return self._apply(model_id, self.resource(model_id, kind="model"), "predict", X)

    def predict_proba(self, model_id: str, X: Any) -> dict:
        return self._apply(model_id, self.resource(model_id, kind="model"), "predict_proba", X)

    def transform(self, model_id: str, X: Any) -> dict:
        return self._apply(model_id, self.resource(model_id, kind="model"), "transform", X)

    @handler
    def score(self, model_id: str, X: Any, y: Any) -> float:
        model = self.resource(model_id, kind="model")
        fn = _method(model_id, model, "score")
        Xa, ya = from_wire(X, "X"), from_wire(y, "y")
        with _sklearn_errors(model_id):
            return float(fn(Xa, ya))

    @handler
    def load_dataset(self, name: str) -> dict:
        X, y, feature_names, target_names = _dataset(name)
        return {"X": to_wire(X), "y": to_wire(y), "feature_names": feature_names, "target_names": target_names}

    def _apply_batch(self, method: str, items: list[dict]) -> list[Any]:
        out: list[Any] = [None] * len(items)
        # items that can share one sklearn call: same model, same feature count, 2-D
        groups: dict[tuple, list[tuple[int, np.ndarray]]] = {}
        fns: dict[str, Any] = {}  # per model: its method, checked once (is_fitted is not cheap)
        for i, item in enumerate(items):
            try:
                model_id, X = _item_args(method, item)
                if model_id not in fns:
                    fns[model_id] = _method(model_id, self.resource(model_id, kind="model"), method)
                Xa = from_wire(X, "X")
            except Exception as e:  # this caller's input: its error alone
                out[i] = e
                continue
            key = (model_id, Xa.shape[1]) if Xa.ndim == 2 else (model_id, "alone", i)
            groups.setdefault(key, []).append((i, Xa))
        for (model_id, *_), members in groups.items():
            fn = fns[model_id]
            parts = None
            if len(members) > 1:
                try:
                    with _sklearn_errors(model_id):
                        res = fn(np.concatenate([x for _, x in members]))
                    parts = _split_rows(res, [x.shape[0] for _, x in members])
                except Exception:  # a bad row somewhere: each caller gets its own answer below
                    parts = None
            if parts is None:
                for i, Xa in members:
                    out[i] = _call_one(model_id, fn, Xa)
            else:
                for (i, _), part in zip(members, parts):
                    out[i] = to_wire(part)
        return out

    def _apply(self, model_id: str, model: Model, method: str, X: Any) -> dict:
        fn = _method(model_id, model, method)
        Xa = from_wire(X, "X")
        with _sklearn_errors(model_id):
            out = fn(Xa)
        return to_wire(out)


_dataset = dataset  # the module function; `dataset` is also fit's argument name


def _item_args(method: str, item: dict) -> tuple[str, Any]:
    """One batch item's arguments, checked as the handler's signature used to check them."""
    if item.keys() != {"model_id", "X"}:
        missing = sorted({"model_id", "X"} - item.keys())
        extra = sorted(str(k) for k in item.keys() - {"model_id", "X"})
        why = f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}"
        raise InvalidArgument(f"{method} takes model_id and X: {why}")
    model_id = item["model_id"]
    if type(model_id) is not str:
        raise InvalidArgument(f"{method}: model_id must be a string, not {type(model_id).__name__}")
    return model_id, item["X"]


def _call_one(model_id: str, fn: Any, Xa: np.ndarray) -> Any:
    """One caller's rows alone: the wire array, or the exception for that caller."""
    try:
        with _sklearn_errors(model_id):
            return to_wire(fn(Xa))
    except Exception as e:
        return e


def _split_rows(res: Any, counts: list[int]) -> list[np.ndarray] | None:
    """The output of a stacked call cut back into each caller's rows; None when it is not an
    array with one row per input row (a sparse matrix, a list per output), to be served alone."""
    if not isinstance(res, np.ndarray) or res.ndim < 1 or res.shape[0] != sum(counts):
        return None
    return np.split(res, np.cumsum(counts)[:-1])


def _given(v: Any) -> bool:
    """Whether an optional array argument was given. Go's zero mlbridge.Array (dtype "", nil
    shape and data) means "no y", as for clustering."""
    return v is not None and not (isinstance(v, dict) and v.get("dtype") == ""
                                  and not v.get("shape") and not v.get("data"))


def _method(model_id: str, model: Model, name: str) -> Any:
    if not is_fitted(model):
        raise InvalidArgument(f"model {model_id!r} is not fitted: call fit first")
    fn = getattr(model, name, None)  # sklearn hides unavailable methods (SVC(probability=False))
    if fn is None:
        raise InvalidArgument(f"model {model_id!r} ({'/'.join(class_names(model))}) has no {name}")
    return fn


@contextmanager
def _sklearn_errors(model_id: str) -> Iterator[None]:
    """sklearn says ValueError about the caller's data (feature count, NaN, one class only,
    bad param values checked at fit): those are invalid arguments, keeping sklearn's type."""
    try:
        yield
    except NotFittedError as e:
        raise InvalidArgument(f"model {model_id!r} is not fitted: call fit first") from e
    except ValueError as e:
        raise InvalidArgument(f"model {model_id!r}: {e}", type_name=type(e).__name__) from e
