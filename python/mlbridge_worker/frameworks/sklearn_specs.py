"""scikit-learn models from host-owned definitions, their saved state, and bundled datasets.

Estimators come only from :data:`ESTIMATORS`: a name on the wire selects a class from this table
and is never imported, so a definition cannot reach ``os.system`` or any other callable.
"""

from __future__ import annotations

import functools
import io
import pickle
import sys
from typing import Any

import numpy as np
from sklearn import cluster, datasets, decomposition, ensemble, linear_model, naive_bayes, neighbors, \
    neural_network, preprocessing, svm, tree
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.utils.validation import check_is_fitted

from ..errors import InvalidArgument

_MODULES = (linear_model, ensemble, neighbors, tree, svm, naive_bayes, cluster, decomposition, preprocessing,
            neural_network)
_NAMES = """
    LinearRegression Ridge RidgeClassifier Lasso ElasticNet LogisticRegression SGDClassifier SGDRegressor
    RandomForestClassifier RandomForestRegressor ExtraTreesClassifier ExtraTreesRegressor
    GradientBoostingClassifier GradientBoostingRegressor HistGradientBoostingClassifier
    HistGradientBoostingRegressor KNeighborsClassifier KNeighborsRegressor DecisionTreeClassifier
    DecisionTreeRegressor SVC SVR LinearSVC LinearSVR GaussianNB MultinomialNB BernoulliNB
    KMeans MiniBatchKMeans PCA TruncatedSVD MLPClassifier MLPRegressor
    StandardScaler MinMaxScaler MaxAbsScaler RobustScaler Normalizer PolynomialFeatures
""".split()
#: the estimators a definition may name
ESTIMATORS: dict[str, type[BaseEstimator]] = {n: next(getattr(m, n) for m in _MODULES if hasattr(m, n)) for n in _NAMES}
_ALLOWED = frozenset(ESTIMATORS.values())

#: the bundled datasets (files shipped with scikit-learn: no network)
DATASETS = {n: getattr(datasets, f"load_{n}") for n in ("iris", "digits", "wine", "breast_cancer", "diabetes")}

Model = BaseEstimator  # an allowlisted estimator or a Pipeline of them


# ------------------------------------------------------------------ definitions

def build_model(spec: Any) -> Model:
    """An unfitted estimator from ``{"estimator", "params"?}`` or ``{"pipeline": [step, ...]}``."""
    if not isinstance(spec, dict) or len(spec.keys() & {"estimator", "pipeline"}) != 1:
        raise InvalidArgument('a model spec has either "estimator" (and "params") or "pipeline"')
    if "pipeline" in spec:
        _check_keys(spec, {"pipeline"}, "model spec")
        steps = spec["pipeline"]
        if not isinstance(steps, list) or not steps:
            raise InvalidArgument('"pipeline" must be a non-empty list of {"estimator", "params"} steps')
        ests = [_build_one(s, f"pipeline step {i}") for i, s in enumerate(steps)]
        for i, e in enumerate(ests[:-1]):  # sklearn would only say so at fit time
            if not hasattr(e, "transform"):
                raise InvalidArgument(f"pipeline step {i} ({type(e).__name__}) is not a transformer; "
                                      "only the last step may be")
        return make_pipeline(*ests)
    return _build_one(spec, "model spec")


def _build_one(spec: Any, where: str) -> BaseEstimator:
    if not isinstance(spec, dict):
        raise InvalidArgument(f'{where} must be a map {{"estimator", "params"}}')
    _check_keys(spec, {"estimator", "params"}, where)
    name, params = spec.get("estimator"), spec.get("params") or {}
    cls = ESTIMATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        hint = " (names are looked up in an allowlist, never imported)" if isinstance(name, str) and "." in name else ""
        raise InvalidArgument(f"{where}: unknown estimator {name!r}{hint}; one of {', '.join(sorted(ESTIMATORS))}")
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise InvalidArgument(f"{where}: params of {name} must be a map of parameter names to values")
    try:
        est = cls(**params)
        # Check values now (sklearn only does at fit): a bad definition fails where it is made.
        validate = getattr(est, "_validate_params", None)
        if validate is not None:
            validate()
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"{where}: bad params for {name}: {e}", type_name=type(e).__name__) from e
    return est


def _check_keys(spec: dict, allowed: set[str], where: str) -> None:
    extra = spec.keys() - allowed
    if extra:
        raise InvalidArgument(f"{where}: unknown keys {sorted(map(str, extra))}; allowed: {sorted(allowed)}")


def class_names(model: Model) -> list[str]:
    steps = [s for _, s in model.steps] if isinstance(model, Pipeline) else [model]
    return [type(s).__name__ for s in steps]


def is_fitted(model: Model) -> bool:
    try:
        check_is_fitted(model)
    except NotFittedError:
        return False
    return True


# ------------------------------------------------------------------ saved state
#
# State is pickle: skops is not a dependency. That is acceptable because state never comes from a
# caller's arguments: the host stores exactly the bytes this bridge's `fit` returned and sends
# them back in a definition. Loading is still defended in depth: the unpickler resolves only
# classes of numpy / scikit-learn and their pickle reconstructors (so a tampered state cannot
# name os.system, eval or subprocess), and the result must be an allowlisted estimator or a
# pipeline of them, of the classes the definition's spec names.

def dumps(model: Model) -> bytes:
    return pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)


def loads(state: Any, spec: Any) -> Model:
    expected = class_names(build_model(spec))  # the spec must be valid by itself too
    if not isinstance(state, (bytes, bytearray)):
        raise InvalidArgument(f"model state must be bytes, not {type(state).__name__}")
    try:
        model = _Unpickler(io.BytesIO(state)).load()
    except InvalidArgument:
        raise
    except Exception as e:  # truncated or foreign bytes: pickle raises many kinds
        raise InvalidArgument(f"model state is not a saved model: {type(e).__name__}: {e}") from e
    steps = [s for _, s in model.steps] if isinstance(model, Pipeline) and isinstance(model.steps, list) else [model]
    if not all(isinstance(s, BaseEstimator) and type(s) in _ALLOWED for s in steps):
        raise InvalidArgument(f"model state holds {type(model).__name__}, not an allowlisted estimator or pipeline")
    if class_names(model) != expected:
        raise InvalidArgument(f"model state holds {class_names(model)} but the spec defines {expected}")
    return model


_RECONSTRUCTORS = frozenset(("_reconstruct", "scalar", "_frombuffer", "newObj", "__randomstate_ctor",
                             "__generator_ctor", "__bit_generator_ctor"))
_BUILTINS = {("builtins", n) for n in ("complex", "slice", "set", "frozenset", "bytearray", "range")}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _BUILTINS:
            return super().find_class(module, name)
        ours = module == "numpy" or module.startswith(("numpy.", "sklearn."))
        # Only modules already imported (importing one can run code, e.g. a __main__), and no
        # dotted names (they would reach methods: Class.method).
        if ours and module in sys.modules and "." not in name:
            obj = super().find_class(module, name)
            if isinstance(obj, type) and _safe_class(obj):
                return obj
            if name in _RECONSTRUCTORS or name.startswith("__pyx_unpickle_"):
                return obj
        raise InvalidArgument(f"model state refers to {module}.{name}, which a saved model never needs")


def _safe_class(cls: type) -> bool:
    """A class a state may construct: defined in numpy or scikit-learn (not a class those modules
    merely import: sklearn.datasets._covtype.GzipFile is gzip's, and GzipFile(path, "wb") truncates
    any file), no finalizer (numpy's DataSource.__del__ rmtree()s whatever _destpath the state
    gives it when the refused object is collected), and no memmap (it opens files)."""
    own = cls.__module__ == "numpy" or cls.__module__.startswith(("numpy.", "sklearn."))
    finalizer = any("__del__" in vars(c) for c in cls.__mro__ if c is not object)
    return own and not finalizer and not issubclass(cls, np.memmap)


# ------------------------------------------------------------------ datasets

def dataset(name: Any) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """X, y, feature names, target names (as strings: digits' are numbers) of a bundled dataset."""
    if not isinstance(name, str) or name not in DATASETS:
        raise InvalidArgument(f"unknown dataset {name!r}; one of {', '.join(DATASETS)}")
    return _load(name)


@functools.cache  # a few hundred KB each; loading parses CSV files
def _load(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    b = DATASETS[name]()
    X, y = np.asarray(b.data), np.asarray(b.target)
    X.setflags(write=False)  # shared by every call
    y.setflags(write=False)
    names = b.get("feature_names")
    feature_names = [str(f) for f in names] if names is not None else [f"x{i}" for i in range(X.shape[1])]
    target_names = [str(t) for t in b.get("target_names", [])]
    return X, y, feature_names, target_names
