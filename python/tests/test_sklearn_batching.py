"""The batched sklearn ops: one sklearn call on stacked rows, each caller's rows back to it, and a
caller's bad input failing that caller alone."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression

from mlbridge_worker.arrays import from_wire, to_wire
from mlbridge_worker.errors import InvalidArgument, NotFound
from mlbridge_worker.frameworks.sklearn_bridge import BATCH_MAX_SIZE, SklearnBridge

X, Y = load_iris(return_X_y=True)
LOGREG = {"estimator": "LogisticRegression", "params": {"max_iter": 500}}


@pytest.fixture
def bridge() -> SklearnBridge:
    b = SklearnBridge()
    b._initialize_framework()
    b.define_resource("m", "model", 1, LOGREG)
    b.fit("m", dataset="iris")
    b.define_resource("pca", "model", 1, {"estimator": "PCA", "params": {"n_components": 2}})
    b.fit("pca", dataset="iris")
    return b


def item(model_id: str, rows) -> dict:
    return {"model_id": model_id, "X": to_wire(np.asarray(rows, dtype=float))}


def test_declared_batched(bridge):
    assert bridge.batched_ops() == {op: {"max_size": BATCH_MAX_SIZE, "max_wait_ms": 2}
                                    for op in ("predict", "predict_proba", "transform")}


def test_each_item_gets_its_own_rows(bridge):
    want = LogisticRegression(max_iter=500).fit(X, Y)
    # single rows and a 3-row item, from all three classes
    picks = [[0], [60], [120], [10, 70, 140], [149]]
    out = bridge.predict_batch([item("m", X[p]) for p in picks])
    for p, got in zip(picks, out):
        np.testing.assert_array_equal(from_wire(got, "r"), want.predict(X[p]))
    proba = bridge.predict_proba_batch([item("m", X[p]) for p in picks])
    for p, got in zip(picks, proba):
        np.testing.assert_allclose(from_wire(got, "r"), want.predict_proba(X[p]))
    pca = PCA(2).fit(X)
    tr = bridge.transform_batch([item("pca", X[p]) for p in picks])
    for p, got in zip(picks, tr):
        np.testing.assert_allclose(np.abs(from_wire(got, "r")), np.abs(pca.transform(X[p])), atol=1e-9)


def test_one_sklearn_call_for_the_batch(bridge, monkeypatch):
    model = bridge.resource("m", kind="model")
    seen = []
    orig = type(model).predict
    monkeypatch.setattr(type(model), "predict", lambda self, Xa: seen.append(Xa.shape) or orig(self, Xa))
    bridge.predict_batch([item("m", X[[i]]) for i in range(20)])
    assert seen == [(20, 4)]


def test_bad_items_fail_alone(bridge):
    nan_row = X[[5]].copy()
    nan_row[0, 1] = np.nan
    items = [
        item("m", X[[0]]),
        item("m", X[[1], :3]),  # 3 features for a 4-feature model
        item("nope", X[[2]]),  # no such model
        {"model_id": "m"},  # no X
        item("m", nan_row),  # stacks, but sklearn refuses NaN: the batch is re-run item by item
        {"model_id": 7, "X": to_wire(X[[3]])},
        item("m", X[[100]]),
    ]
    out = bridge.predict_batch(items)
    assert from_wire(out[0], "r").tolist() == [0] and from_wire(out[6], "r").tolist() == [2]
    assert isinstance(out[1], InvalidArgument) and "feature" in str(out[1])
    assert isinstance(out[2], NotFound)
    assert isinstance(out[3], InvalidArgument) and "missing X" in str(out[3])
    assert isinstance(out[4], InvalidArgument) and "NaN" in str(out[4])
    assert isinstance(out[5], InvalidArgument) and "model_id must be a string" in str(out[5])


def test_through_a_worker_batch_and_plain_calls(make_worker):
    w = make_worker("mlbridge_worker.frameworks.sklearn_bridge:SklearnBridge")
    hello = w.hello()
    assert hello["batched"]["predict"] == {"max_size": BATCH_MAX_SIZE, "max_wait_ms": 2}
    w.ok("define_resource", {"id": "m", "kind": "model", "version": 1, "spec": LOGREG})
    w.ok("fit", {"model_id": "m", "dataset": "iris"})
    # a plain call (an older host, or batching off) is a batch of one
    assert from_wire(w.ok("predict", {"model_id": "m", "X": to_wire(X[[120]])}), "r").tolist() == [2]
    id = w.new_id()
    w.send({"t": "breq", "id": id, "op": "predict",
            "items": [item("m", X[[0]]), item("m", X[[0], :2]), item("m", X[[60]])]})
    m = w.next_for(id)
    assert m["t"] == "bres" and [r["ok"] for r in m["results"]] == [True, False, True]
    assert from_wire(m["results"][2]["result"], "r").tolist() == [1]
    assert m["results"][1]["error"]["category"] == "invalid_argument"
