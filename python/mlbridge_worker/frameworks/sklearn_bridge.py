"""SklearnBridge: scikit-learn models as host-owned resources of kind "model".

A definition names an allowlisted estimator or pipeline (sklearn_specs); after ``fit`` the host
stores the returned ``state`` in the definition, so any worker can rebuild the trained model and
a dead worker loses nothing. Arrays travel in the binary format of :mod:`mlbridge_worker.arrays`.

Handlers are plain ``def``: sklearn is CPU-bound and mostly releases the GIL in its native code,
so they belong on the worker's thread pool.
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
from ..base_bridge import BaseBridge, Resource, handler
from ..errors import InvalidArgument
from .sklearn_specs import Model, build_model, class_names, dataset, dumps, is_fitted, loads


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

    @handler
    def predict(self, model_id: str, X: Any) -> dict:
        return self._apply(model_id, self.resource(model_id, kind="model"), "predict", X)

    @handler
    def predict_proba(self, model_id: str, X: Any) -> dict:
        return self._apply(model_id, self.resource(model_id, kind="model"), "predict_proba", X)

    @handler
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

    def _apply(self, model_id: str, model: Model, method: str, X: Any) -> dict:
        fn = _method(model_id, model, method)
        Xa = from_wire(X, "X")
        with _sklearn_errors(model_id):
            out = fn(Xa)
        return to_wire(out)


_dataset = dataset  # the module function; `dataset` is also fit's argument name


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
