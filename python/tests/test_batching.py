"""Batched handlers through a real worker: breq/bres, per-item errors, plain calls as a batch of
one, the declared limits, cancels and deadlines of a batch, and bad declarations."""

from __future__ import annotations

import time

import pytest

from mlbridge_worker import BaseBridge, InvalidConfiguration, batched, handler

BATCH = "mlbridge_worker.batch_echo:BatchEchoBridge"


@pytest.fixture
def w(make_worker):
    w = make_worker(BATCH)
    w.hello()
    return w


def breq(w, op: str, items: list, **extra) -> int:
    id = w.new_id()
    w.send({"t": "breq", "id": id, "op": op, "items": items, **extra})
    return id


def test_hello_declares_batched_ops(make_worker):
    w = make_worker(BATCH)
    h = w.hello()
    assert h["batched"] == {"double": {"max_size": 8, "max_wait_ms": 20},
                            "adouble": {"max_size": 8, "max_wait_ms": 20},
                            "miscount": {"max_size": 4, "max_wait_ms": 0}}
    assert h["handlers"]["double"] == "sync" and h["handlers"]["adouble"] == "async"


def test_plain_echo_hello_has_no_batched_field(make_worker):
    w = make_worker()
    assert "batched" not in w.hello()


@pytest.mark.parametrize("op", ["double", "adouble"])
def test_one_batch_one_invocation_results_in_order(w, op):
    id = breq(w, op, [{"x": 1}, {"x": 2}, {"x": 3, "fail": True}, {"x": 4}])
    m = w.next_for(id)
    assert m["t"] == "bres" and m["id"] == id
    r = m["results"]
    assert [x["ok"] for x in r] == [True, True, False, True]
    assert [x["result"]["y"] for x in r if x["ok"]] == [2, 4, 8]
    assert {x["result"]["batch"] for x in r if x["ok"]} == {4}  # one invocation saw all four
    assert r[2]["error"]["category"] == "invalid_argument" and "x=3" in r[2]["error"]["message"]
    assert w.ok("batch_sizes") == [4]


def test_plain_req_is_a_batch_of_one(w):
    assert w.ok("double", {"x": 21})["y"] == 42
    m = w.call("double", {"x": 1, "fail": True})
    assert m["ok"] is False and m["error"]["category"] == "invalid_argument"
    assert w.ok("adouble", {"x": 5})["batch"] == 1


def test_batch_larger_than_declared_is_refused(w):
    id = breq(w, "double", [{"x": i} for i in range(9)])
    m = w.next_for(id)
    assert m["t"] == "res" and m["ok"] is False and m["error"]["category"] == "invalid_argument"
    assert w.ok("batch_sizes") == []  # the handler never ran


def test_breq_to_a_plain_op_or_unknown_op(w):
    m = w.next_for(breq(w, "echo", [{"value": 1}]))
    assert m["error"]["category"] == "invalid_argument"
    m = w.next_for(breq(w, "nope", [{}]))
    assert m["error"]["category"] == "unknown_op"


def test_wrong_result_count_fails_the_batch(w):
    m = w.next_for(breq(w, "miscount", [{}, {}]))
    assert m["t"] == "res" and m["ok"] is False
    assert m["error"]["category"] == "invalid_configuration" and "3 results for a batch of 2" in m["error"]["message"]


@pytest.mark.parametrize("op", ["double", "adouble"])
def test_cancel_of_a_batch_answers_cancelled(w, op):
    id = breq(w, op, [{"x": 1, "sleep": 5}, {"x": 2}])
    time.sleep(0.1)
    w.send({"t": "cancel", "id": id})
    m = w.next_for(id)
    assert m["t"] == "res" and m["error"]["category"] == "cancelled"
    assert w.ok("echo", {"value": 1}) is not None  # still serving


def test_deadline_of_a_batch(w):
    id = breq(w, "adouble", [{"x": 1, "sleep": 5}], deadline=int(time.time() * 1000) + 200)
    m = w.next_for(id)
    assert m["t"] == "res" and m["error"]["category"] == "timeout"


def test_bad_breq_is_a_protocol_error(w):
    m = w.next_for(breq(w, "double", [1, 2]))
    assert m["error"]["category"] == "protocol"


@pytest.mark.parametrize("size,wait,needle", [
    (0, 5, "max_size must be an integer >= 1"),
    (-3, 5, "max_size must be an integer >= 1"),
    (2.5, 5, "max_size must be an integer >= 1"),
    (4, -1, "max_wait_ms must be an integer >= 0"),
    (4, 1.5, "max_wait_ms must be an integer >= 0"),
])
def test_bad_declarations_fail_at_construction(size, wait, needle):
    class Bad(BaseBridge):
        def _initialize_framework(self) -> None:
            pass

        @handler
        @batched(max_size=size, max_wait_ms=wait)
        def op(self, items):
            return items

    with pytest.raises(InvalidConfiguration, match=needle):
        Bad()


def test_batched_generator_is_refused_at_construction():
    class Bad(BaseBridge):
        def _initialize_framework(self) -> None:
            pass

        @handler
        @batched(max_size=2, max_wait_ms=1)
        def op(self, items):
            yield items

    with pytest.raises(InvalidConfiguration, match="sync_gen handler"):
        Bad()


def test_answer_too_big_for_a_frame_fails_only_the_items_that_do_not_fit(make_worker):
    # 3 results of 40 kB cannot share a 100 kB frame: the one that does not fit fails alone,
    # with a serialization error saying why; the items after it still get their results
    w = make_worker(BATCH)
    w.hello(max_frame=100_000)
    id = breq(w, "double", [{"x": 1, "pad": 40_000}, {"x": 2, "pad": 40_000}, {"x": 3, "pad": 40_000}, {"x": 4}])
    m = w.next_for(id)
    assert m["t"] == "bres", m
    r = m["results"]
    assert [x["ok"] for x in r] == [True, True, False, True]
    assert [len(x["result"]["pad"]) for x in r[:2]] == [40_000, 40_000] and r[3]["result"]["y"] == 8
    err = r[2]["error"]
    assert err["category"] == "serialization" and err["type"] == "FrameTooLarge"
    assert "batch's other answers" in err["message"] and "max_size" in err["message"]


def test_items_errors_that_tip_the_answer_over_the_frame_shed_the_largest_item(make_worker):
    # a result that fits alone, then 7 failing items whose errors pass the frame together: the
    # largest item is answered with its own FrameTooLarge error, the others with their errors
    w = make_worker(BATCH)
    w.hello(max_frame=100_000)
    id = breq(w, "double", [{"x": 1, "pad": 99_500}] + [{"x": i, "fail": True} for i in range(2, 9)])
    m = w.next_for(id)
    assert m["t"] == "bres", m
    r = m["results"]
    assert not any(x["ok"] for x in r)
    assert r[0]["error"]["category"] == "serialization" and r[0]["error"]["type"] == "FrameTooLarge"
    assert "did not fit in its batch's answer" in r[0]["error"]["message"]
    assert all(x["error"]["category"] == "invalid_argument" for x in r[1:])
    assert w.ok("double", {"x": 5})["y"] == 10  # the worker serves on
