"""SklearnBridge with real scikit-learn: definitions, fit/predict, saved state, errors, and one run
through a real worker process."""

from __future__ import annotations

import gc
import os
import pickle
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from client import Worker
from mlbridge_worker.arrays import from_wire, to_wire
from mlbridge_worker.errors import InvalidArgument, NotFound
from mlbridge_worker.frameworks.sklearn_bridge import SklearnBridge
from mlbridge_worker.frameworks.sklearn_specs import DATASETS, ESTIMATORS

BRIDGE = "mlbridge_worker.frameworks.sklearn_bridge:SklearnBridge"
LOGREG = {"estimator": "LogisticRegression", "params": {"max_iter": 500}}
PIPE = {"pipeline": [{"estimator": "StandardScaler"}, {"estimator": "LogisticRegression", "params": {"max_iter": 200}}]}
IRIS_X, IRIS_Y = load_iris(return_X_y=True)


def new_bridge() -> SklearnBridge:
    b = SklearnBridge()
    b._initialize_framework()
    return b


@pytest.fixture
def bridge() -> SklearnBridge:
    return new_bridge()


def arr(a) -> np.ndarray:
    return from_wire(a, "result")


def test_info(bridge):
    info = bridge.get_framework_info()
    assert info["name"] == "sklearn" and info["capabilities"] == ["models"]
    assert info["version"].startswith("1.")
    kinds = bridge.handler_kinds()
    assert {kinds[op] for op in ("fit", "predict", "predict_proba", "transform", "score", "load_dataset")} == {"sync"}


BAD_SPECS = [
    ({"estimator": "Nope"}, "unknown estimator 'Nope'"),
    ({"estimator": "os.system"}, "never imported"),
    ({"estimator": "sklearn.linear_model.LogisticRegression"}, "never imported"),
    ({"estimator": "DummyClassifier"}, "unknown estimator"),
    ({"estimator": 3}, "unknown estimator"),
    ({"estimator": "LogisticRegression", "params": {"nope": 1}}, "bad params.*nope"),
    ({"estimator": "LogisticRegression", "params": {"C": "abc"}}, "bad params.*C"),
    ({"estimator": "LogisticRegression", "params": {"C": -1.0}}, "bad params.*C"),
    ({"estimator": "RandomForestClassifier", "params": {"n_estimators": 0}}, "bad params"),
    ({"estimator": "LogisticRegression", "params": [1]}, "params of LogisticRegression"),
    ({"estimator": "LogisticRegression", "extra": 1}, "unknown keys"),
    ({}, "either"),
    ({"estimator": "PCA", "pipeline": [{"estimator": "PCA"}]}, "either"),
    ({"pipeline": []}, "non-empty"),
    ({"pipeline": "StandardScaler"}, "non-empty"),
    ({"pipeline": ["StandardScaler"]}, "pipeline step 0"),
    ({"pipeline": [{"estimator": "os.system"}]}, "pipeline step 0: unknown estimator"),
    ({"pipeline": [{"estimator": "LogisticRegression"}, {"estimator": "PCA"}]}, "not a transformer"),
]


@pytest.mark.parametrize("spec,message", BAD_SPECS, ids=range(len(BAD_SPECS)))
def test_bad_specs_are_refused(bridge, spec, message):
    with pytest.raises(InvalidArgument, match=message):
        bridge.define_resource("m", "model", 1, spec)
    assert bridge.list_resources() == []


def test_other_kinds_are_refused(bridge):
    with pytest.raises(InvalidArgument, match="no resources of kind 'program'"):
        bridge.define_resource("p", "program", 1, {"signature": "a -> b"})


def test_fit_on_a_dataset_then_predict_proba_score(bridge):
    bridge.define_resource("m", "model", 1, LOGREG)
    res = bridge.fit("m", dataset="iris")
    want = LogisticRegression(max_iter=500).fit(IRIS_X, IRIS_Y)
    assert res["n_samples"] == 150 and res["n_features"] == 4 and res["classes"] == [0, 1, 2]
    assert res["train_score"] == pytest.approx(want.score(IRIS_X, IRIS_Y))
    assert type(res["state"]) is bytes
    X = to_wire(IRIS_X)
    p = bridge.predict("m", X)
    assert p["dtype"] == "int64" and p["shape"] == [150]
    np.testing.assert_array_equal(arr(p), want.predict(IRIS_X))
    np.testing.assert_allclose(arr(bridge.predict_proba("m", X)), want.predict_proba(IRIS_X))
    assert bridge.score("m", X, to_wire(IRIS_Y)) == pytest.approx(want.score(IRIS_X, IRIS_Y))
    assert bridge.score("m", IRIS_X.tolist(), IRIS_Y.tolist()) == pytest.approx(want.score(IRIS_X, IRIS_Y))


def test_fit_on_arrays(bridge):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10_000, 64))
    y = X @ rng.standard_normal(64) + 0.01 * rng.standard_normal(10_000)
    bridge.define_resource("r", "model", 1, {"estimator": "Ridge", "params": {"alpha": 0.5}})
    res = bridge.fit("r", to_wire(X), to_wire(y))
    assert res["n_samples"] == 10_000 and res["n_features"] == 64 and res["classes"] is None
    assert res["train_score"] > 0.99
    want = Ridge(alpha=0.5).fit(X, y)
    np.testing.assert_allclose(arr(bridge.predict("r", to_wire(X[:100]))), want.predict(X[:100]))
    # float32 input is accepted too
    assert arr(bridge.predict("r", to_wire(X[:3].astype(np.float32)))).shape == (3,)


def test_fit_replaces_the_cached_model_with_a_fitted_copy(bridge):
    bridge.define_resource("m", "model", 1, LOGREG)
    before = bridge.resource("m")
    bridge.fit("m", dataset="iris")
    after = bridge.resource("m")
    assert after is not before and hasattr(after, "coef_") and not hasattr(before, "coef_")
    assert bridge.describe("m")["fitted"] is True
    # refitting on other data replaces it again
    bridge.fit("m", IRIS_X[:100], IRIS_Y[:100])
    assert bridge.resource("m").classes_.tolist() == [0, 1]


def test_state_round_trip_on_a_fresh_bridge(bridge):
    spec = {"estimator": "RandomForestClassifier", "params": {"n_estimators": 20, "random_state": 0}}
    bridge.define_resource("m", "model", 1, spec)
    state = bridge.fit("m", dataset="digits")["state"]
    X = bridge.load_dataset("digits")["X"]
    fresh = new_bridge()
    assert fresh.define_resource("m", "model", 2, spec, state)["built"] is True
    assert fresh.describe("m")["fitted"] is True
    assert bridge.predict("m", X) == fresh.predict("m", X)
    assert bridge.predict_proba("m", X) == fresh.predict_proba("m", X)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_every_allowlisted_estimator_saves_and_restores(name):
    b = new_bridge()
    b.define_resource("m", "model", 1, {"estimator": name})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on iris
        state = b.fit("m", dataset="iris")["state"]
    fresh = new_bridge()
    fresh.define_resource("m", "model", 1, {"estimator": name}, state)
    X = to_wire(IRIS_X)
    for op in ("predict", "transform"):
        if hasattr(b.resource("m"), op):
            assert getattr(fresh, op)("m", X) == getattr(b, op)("m", X)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_tampered_or_foreign_state_is_refused(bridge, tmp_path):
    marker = tmp_path / "pwned"
    fitted_dummy = DummyClassifier().fit(IRIS_X, IRIS_Y)
    fitted_logreg = LogisticRegression(max_iter=500).fit(IRIS_X, IRIS_Y)
    cases = [
        (pickle.dumps(_Exploit(marker)), "refers to posix.system"),
        (pickle.dumps([_Exploit(marker)], protocol=2), "refers to posix.system"),
        (pickle.dumps(eval), "refers to builtins.eval"),
        (pickle.dumps({"a": 1}), "not an allowlisted estimator"),
        (pickle.dumps(fitted_dummy), "not an allowlisted estimator"),
        (pickle.dumps(make_pipeline(fitted_dummy)), "not an allowlisted estimator"),
        (pickle.dumps(fitted_logreg), r"holds \['LogisticRegression'\] but the spec defines \['PCA'\]"),
        (b"not a pickle", "not a saved model"),
        (pickle.dumps(fitted_logreg)[:-10], "not a saved model"),
        ("text", "must be bytes"),
    ]
    for state, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            bridge.define_resource("m", "model", 1, {"estimator": "PCA"}, state)
    assert not marker.exists()
    assert bridge.list_resources() == []
    # a good state with a bad spec is refused for the spec
    with pytest.raises(InvalidArgument, match="unknown estimator"):
        bridge.define_resource("m", "model", 1, {"estimator": "Nope"}, pickle.dumps(fitted_logreg))


def _binunicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def test_tampered_state_constructs_no_class_that_touches_files(bridge, tmp_path):
    """Classes reachable from numpy / sklearn modules that act on files: numpy's DataSource,
    whose finalizer rmtree()s the _destpath a state sets once the refused object is collected,
    and gzip's GzipFile imported into sklearn.datasets._covtype, which GzipFile(path, "wb")
    truncates. Both are refused by name, before they are built."""
    victim = tmp_path / "victim"
    victim.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("important data")
    rmtree = (b"\x80\x02cnumpy.lib._datasource\nDataSource\n)\x81}(" + _binunicode("_istmpdest") + b"\x88"
              + _binunicode("_destpath") + _binunicode(str(victim)) + b"ub.")
    truncate = (b"\x80\x02csklearn.datasets._covtype\nGzipFile\n" + _binunicode(str(precious))
                + _binunicode("wb") + b"\x86R.")
    for state, name in [(rmtree, "DataSource"), (truncate, "GzipFile")]:
        with pytest.raises(InvalidArgument, match=f"refers to .*{name}"):
            bridge.define_resource("m", "model", 1, {"estimator": "PCA"}, state)
    gc.collect()
    assert victim.is_dir()
    assert precious.read_text() == "important data"


def test_unfitted_model(bridge):
    bridge.define_resource("m", "model", 1, LOGREG)
    bridge.define_resource("p", "model", 1, PIPE)
    X = to_wire(IRIS_X)
    calls = [lambda: bridge.predict("m", X), lambda: bridge.predict_proba("m", X),
             lambda: bridge.score("m", X, to_wire(IRIS_Y)), lambda: bridge.predict("p", X),
             lambda: bridge.execute("m", {"X": X})]
    for call in calls:
        with pytest.raises(InvalidArgument, match="is not fitted: call fit first"):
            call()


def test_wrong_inputs(bridge):
    bridge.define_resource("m", "model", 1, LOGREG)
    bridge.fit("m", dataset="iris")
    with pytest.raises(InvalidArgument, match="3 features") as e:
        bridge.predict("m", to_wire(IRIS_X[:, :3]))
    assert e.value.type_name == "ValueError"
    with pytest.raises(InvalidArgument, match="2D array"):
        bridge.predict("m", to_wire(IRIS_X[0]))
    with pytest.raises(InvalidArgument, match="no transform"):
        bridge.transform("m", to_wire(IRIS_X))
    with pytest.raises(InvalidArgument, match="^X: unknown dtype"):
        bridge.predict("m", {"dtype": "complex", "shape": [1], "data": b""})
    bridge.define_resource("svc", "model", 1, {"estimator": "SVC"})
    bridge.fit("svc", dataset="iris")
    with pytest.raises(InvalidArgument, match="no predict_proba"):
        bridge.predict_proba("svc", to_wire(IRIS_X))


def test_fit_argument_errors(bridge):
    bridge.define_resource("m", "model", 1, LOGREG)
    X = to_wire(IRIS_X)
    cases = [
        ({"X": X, "dataset": "iris"}, "not both"),
        ({}, "needs X"),
        ({"dataset": "mnist"}, "unknown dataset 'mnist'"),
        ({"X": X}, "requires y"),  # supervised without y: sklearn's own message
        ({"X": X, "y": to_wire(IRIS_Y[:10])}, "inconsistent numbers of samples"),
        ({"X": X, "y": to_wire(np.zeros(150))}, "one class|1 class"),
        ({"X": to_wire(np.full((3, 4), np.nan)), "y": [0, 1, 0]}, "NaN"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InvalidArgument, match=message):
            bridge.fit("m", **kwargs)
    assert bridge.describe("m")["fitted"] is False  # failures leave the cached model alone
    # bad param values not caught at definition time surface at fit as invalid arguments too
    bridge.define_resource("k", "model", 1, {"estimator": "KNeighborsClassifier", "params": {"n_neighbors": 50}})
    with pytest.raises(InvalidArgument, match="n_neighbors|n_samples"):
        bridge.fit("k", IRIS_X[:10], IRIS_Y[:10])


def test_unknown_model_is_not_found(bridge):
    X = to_wire(IRIS_X)
    for call in (lambda: bridge.fit("nope", dataset="iris"), lambda: bridge.predict("nope", X),
                 lambda: bridge.predict_proba("nope", X), lambda: bridge.transform("nope", X),
                 lambda: bridge.score("nope", X, X), lambda: bridge.execute("nope", {"X": X}),
                 lambda: bridge.describe("nope")):
        with pytest.raises(NotFound, match="'nope'"):
            call()


def test_pipeline(bridge):
    X, y = load_wine(return_X_y=True)
    bridge.define_resource("p", "model", 1, PIPE)
    res = bridge.fit("p", to_wire(X), to_wire(y))
    assert res["classes"] == [0, 1, 2] and res["n_features"] == 13
    want = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(X, y)
    np.testing.assert_array_equal(arr(bridge.predict("p", to_wire(X))), want.predict(X))
    fresh = new_bridge()
    fresh.define_resource("p", "model", 2, PIPE, res["state"])
    assert fresh.predict_proba("p", to_wire(X)) == bridge.predict_proba("p", to_wire(X))
    d = fresh.describe("p")
    assert d["estimator"] == ["StandardScaler", "LogisticRegression"] and d["fitted"] is True


def test_transformers_and_clustering(bridge):
    bridge.define_resource("s", "model", 1, {"estimator": "StandardScaler"})
    res = bridge.fit("s", to_wire(IRIS_X))
    assert res["train_score"] is None and res["classes"] is None
    np.testing.assert_allclose(arr(bridge.transform("s", to_wire(IRIS_X))), StandardScaler().fit_transform(IRIS_X))
    bridge.define_resource("pca", "model", 1, {"estimator": "PCA", "params": {"n_components": 2}})
    bridge.fit("pca", dataset="iris")  # y is ignored by unsupervised estimators
    got = arr(bridge.transform("pca", to_wire(IRIS_X)))
    np.testing.assert_allclose(np.abs(got), np.abs(PCA(2).fit_transform(IRIS_X)), atol=1e-9)
    bridge.define_resource("km", "model", 1, {"estimator": "KMeans", "params": {"n_clusters": 3, "random_state": 0}})
    go_zero_array = {"dtype": "", "shape": None, "data": None}  # what Go sends for "no y"
    res = bridge.fit("km", to_wire(IRIS_X), go_zero_array)
    assert isinstance(res["train_score"], float) and res["train_score"] < 0
    labels = arr(bridge.predict("km", to_wire(IRIS_X)))
    assert labels.shape == (150,) and set(labels.tolist()) == {0, 1, 2}


def test_generic_execute_and_describe(bridge):
    bridge.define_resource("m", "model", 3, {"estimator": "LogisticRegression",
                                             "params": {"C": 0.5, "max_iter": 300, "class_weight": {0: 1.0}}})
    d = bridge.describe("m")
    assert d["id"] == "m" and d["kind"] == "model" and d["version"] == 3
    assert d["estimator"] == "LogisticRegression" and d["fitted"] is False
    assert d["params"]["C"] == 0.5 and d["params"]["max_iter"] == 300 and d["params"]["penalty"] in ("l2", "deprecated")
    assert "class_weight" not in d["params"]  # not JSON-safe scalars
    assert all(v is None or type(v) in (str, int, float, bool) for v in d["params"].values())
    bridge.fit("m", dataset="iris")
    out = bridge.execute("m", {"X": to_wire(IRIS_X[:5])})
    assert out == bridge.predict("m", to_wire(IRIS_X[:5]))
    for inputs in ({}, {"x": 1}, {"X": to_wire(IRIS_X), "y": 1}):
        with pytest.raises(InvalidArgument, match='inputs {"X": array}'):
            bridge.execute("m", inputs)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_load_dataset(bridge, name):
    d = bridge.load_dataset(name)
    X, y = arr(d["X"]), arr(d["y"])
    assert X.ndim == 2 and y.shape == (X.shape[0],) and len(d["feature_names"]) == X.shape[1]
    assert all(isinstance(s, str) for s in d["feature_names"] + d["target_names"])
    assert (len(d["target_names"]) == 0) == (name == "diabetes")


def test_load_unknown_dataset(bridge):
    for name in ("mnist", "../iris", ["iris"]):
        with pytest.raises(InvalidArgument, match="unknown dataset"):
            bridge.load_dataset(name)


def test_end_to_end_through_a_worker_process():
    with Worker(BRIDGE) as w:
        hello = w.hello()
        assert hello["framework"]["name"] == "sklearn"
        w.ok("define_resource", {"id": "m", "kind": "model", "version": 1, "spec": PIPE})
        err = w.call("predict", {"model_id": "m", "X": to_wire(IRIS_X)})["error"]
        assert err["category"] == "invalid_argument" and "not fitted" in err["message"]
        res = w.ok("fit", {"model_id": "m", "dataset": "iris"})
        assert type(res["state"]) is bytes and res["classes"] == [0, 1, 2]
        out = w.ok("predict", {"model_id": "m", "X": to_wire(IRIS_X)})
        assert type(out["data"]) is bytes and out["dtype"] == "int64" and out["shape"] == [150]
        want = make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(IRIS_X, IRIS_Y)
        np.testing.assert_array_equal(from_wire(out, "out"), want.predict(IRIS_X))
        # the stored state rebuilds the trained model under another id
        w.ok("define_resource", {"id": "m2", "kind": "model", "version": 1, "spec": PIPE, "state": res["state"]})
        assert w.ok("execute", {"id": "m2", "inputs": {"X": to_wire(IRIS_X)}}) == out
        ds = w.ok("load_dataset", {"name": "wine"})
        assert type(ds["X"]["data"]) is bytes and ds["X"]["shape"] == [178, 13]
        err = w.call("predict", {"model_id": "nope", "X": [[1, 2, 3, 4]]})["error"]
        assert err["category"] == "not_found"
