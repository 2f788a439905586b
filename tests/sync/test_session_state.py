"""SessionState (app/sync/session.py) on its own: versions, the query set, Transitions.

No socket, no hub, no database: results are plain objects with `ready`, `version` and
`modification`, as hub entries are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from app.sync.protocol import decode_ts
from app.sync.session import AddedQuery, ProtocolViolation, SessionState


@dataclass(eq=False)
class Result:
    value: Any = None
    ready: bool = True
    version: int = 1

    def modification(self, query_id: int) -> dict[str, Any]:
        return {"type": "QueryUpdated", "queryId": query_id, "value": self.value}


def add(qid: int, path: str = "q:f", **extra: Any) -> dict[str, Any]:
    return {"type": "Add", "queryId": qid, "udfPath": path, **extra}


def remove(qid: int) -> dict[str, Any]:
    return {"type": "Remove", "queryId": qid}


def versions(msg: dict[str, Any]) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(start, end) as (querySet, identity, ts)."""
    s, e = msg["startVersion"], msg["endVersion"]
    return (
        (s["querySet"], s["identity"], decode_ts(s["ts"])),
        (e["querySet"], e["identity"], decode_ts(e["ts"])),
    )


# ----------------------------------------------------------------- ModifyQuerySet


def test_modify_adds_and_removes_queries_and_moves_the_query_set_version() -> None:
    state = SessionState()
    added, removed = state.modify(0, 1, [add(1, "a:b", args=[{"x": 1}], journal="j"), add(2)])
    assert (added, removed) == (
        [AddedQuery(1, "a:b", [{"x": 1}], "j"), AddedQuery(2, "q:f", [{}], None)],
        [],
    )
    assert state.query_set == 1
    assert state.queries == {1: "a:b", 2: "q:f"}
    added, removed = state.modify(1, 2, [remove(1), add(3, "c.js:d")])
    assert (added, removed) == ([AddedQuery(3, "c:d", [{}], None)], [1])
    assert state.query_set == 2 and set(state.queries) == {2, 3}


def test_a_query_id_removed_and_added_again_in_one_message_is_both() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1, "a:b")])
    added, removed = state.modify(1, 2, [remove(1), add(1, "c:d")])
    assert ([q.query_id for q in added], removed) == ([1], [1])
    assert state.queries[1] == "c:d"


@pytest.mark.parametrize(
    ("base", "new", "mods", "message"),
    [
        (1, 2, [], "Base version 1 passed up doesn't match the current version 0"),
        (None, 1, [], "Base version None"),
        (0, 2, [], "must be the base version plus one"),
        (0, 0, [], "must be the base version plus one"),
        (0, "1", [], "must be the base version plus one"),
        (0, 1, {"type": "Add"}, "modifications must be a list"),
        (0, 1, ["Add"], "each modification must be an object"),
        (0, 1, [add(-1)], "queryId must be a non-negative integer"),
        (0, 1, [add(True)], "queryId must be a non-negative integer"),  # type: ignore[arg-type]
        (0, 1, [{"type": "Add", "queryId": 1}], "Add needs a udfPath string"),
        (0, 1, [add(1, "")], "Add needs a udfPath string"),
        (0, 1, [add(1), add(1)], "Query 1 is already in the query set"),
        (0, 1, [remove(7)], "Query 7 is not in the query set"),
        (0, 1, [{"type": "Replace", "queryId": 1}], "Unknown modification type 'Replace'"),
    ],
)
def test_a_bad_modify_is_a_protocol_violation_and_changes_nothing(
    base: Any, new: Any, mods: Any, message: str
) -> None:
    state = SessionState()
    with pytest.raises(ProtocolViolation, match=message.replace("(", r"\(")):
        state.modify(base, new, mods)
    assert state.query_set == 0 and state.queries == {}


def test_a_message_failing_halfway_applies_none_of_its_modifications() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1)])
    with pytest.raises(ProtocolViolation):
        state.modify(1, 2, [remove(1), add(2), remove(9)])
    assert state.query_set == 1 and set(state.queries) == {1}
    state.modify(1, 2, [add(2)])  # the same base version is still the expected one
    assert set(state.queries) == {1, 2}


def test_a_replayed_modify_is_a_protocol_violation() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1)])
    with pytest.raises(ProtocolViolation, match="Base version 0"):
        state.modify(0, 1, [add(2)])


# ----------------------------------------------------------------- Authenticate


def test_authenticate_moves_the_identity_version_from_its_base() -> None:
    state = SessionState()
    state.authenticate(0)
    state.authenticate(1)
    assert state.identity == 2
    for wrong in (0, 3, None, "2"):
        with pytest.raises(ProtocolViolation, match="does not match 2"):
            state.authenticate(wrong)
    assert state.identity == 2


# ----------------------------------------------------------------- Transitions


def test_no_transition_until_every_target_query_has_a_result() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1), add(2)])
    a, b = Result("a"), Result(ready=False)
    state.target = {1: a, 2: b}
    assert not state.complete()
    assert state.transition(5) is None
    b.ready = True
    assert state.complete()
    msg = state.transition(5)
    assert msg is not None and msg["type"] == "Transition"
    assert versions(msg) == ((0, 0, 0), (1, 0, 5))
    assert sorted(m["queryId"] for m in msg["modifications"]) == [1, 2]


def test_a_forced_transition_while_results_are_pending_moves_only_the_ts() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1)])
    state.target = {1: Result(ready=False)}
    msg = state.transition(7, force=True)
    assert msg is not None
    assert versions(msg) == ((0, 0, 0), (0, 0, 7)) and msg["modifications"] == []
    state.target[1].ready = True  # type: ignore[attr-defined]
    msg = state.transition(8)
    assert msg is not None and versions(msg) == ((0, 0, 7), (1, 0, 8))


def test_only_changed_results_are_sent_and_nothing_when_nothing_changed() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1), add(2)])
    a, b = Result("a"), Result("b")
    state.target = {1: a, 2: b}
    assert state.transition(1) is not None
    assert state.transition(1) is None
    assert state.transition(2) is None  # a newer ts alone is not worth a message
    b.version += 1
    msg = state.transition(3)
    assert msg is not None and [m["queryId"] for m in msg["modifications"]] == [2]
    assert versions(msg) == ((1, 0, 1), (1, 0, 3))


def test_a_forced_transition_with_nothing_changed_still_answers() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1)])
    state.target = {1: Result()}
    state.transition(4)
    msg = state.transition(4, force=True)
    assert msg is not None and msg["modifications"] == []
    assert versions(msg) == ((1, 0, 4), (1, 0, 4))


def test_a_query_bound_to_another_result_object_is_sent_even_at_the_same_version() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1)])
    state.target = {1: Result("old", version=1)}
    state.transition(1)
    state.authenticate(0)
    state.target = {1: Result("new", version=1)}  # re-keyed under the new identity
    msg = state.transition(2)
    assert msg is not None
    assert msg["modifications"] == [{"type": "QueryUpdated", "queryId": 1, "value": "new"}]
    assert versions(msg) == ((1, 0, 1), (1, 1, 2))


def test_a_removed_query_is_sent_as_query_removed() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1), add(2)])
    state.target = {1: Result(), 2: Result()}
    state.transition(1)
    state.modify(1, 2, [remove(2)])
    del state.target[2]
    msg = state.transition(1)
    assert msg is not None
    assert msg["modifications"] == [{"type": "QueryRemoved", "queryId": 2}]
    assert versions(msg) == ((1, 0, 1), (2, 0, 1))


def test_a_query_set_change_without_result_changes_is_still_a_transition() -> None:
    state = SessionState()
    state.modify(0, 1, [])
    msg = state.transition(0)
    assert msg is not None and msg["modifications"] == []
    assert versions(msg) == ((0, 0, 0), (1, 0, 0))


def test_the_ts_a_transition_names_never_goes_back() -> None:
    state = SessionState()
    state.modify(0, 1, [add(1)])
    r = Result()
    state.target = {1: r}
    state.transition(10)
    r.version += 1
    msg = state.transition(3)  # an older hub ts (a mutation reply racing a refresh)
    assert msg is not None and versions(msg) == ((1, 0, 10), (1, 0, 10))


def test_each_transition_starts_where_the_previous_one_ended() -> None:
    state = SessionState()
    r = Result()
    ends: list[tuple[int, int, int]] = [(0, 0, 0)]
    for step in range(1, 6):
        state.modify(step - 1, step, [add(step)])
        state.target[step] = r
        if step % 2 == 0:
            state.authenticate(state.identity)
        msg = state.transition(step * 10)
        assert msg is not None
        start, end = versions(msg)
        assert start == ends[-1]
        ends.append(end)
    assert ends[-1] == (5, 2, 50)


def test_a_query_set_past_the_limit_is_refused_and_applies_nothing() -> None:
    state = SessionState()
    adds = [{"type": "Add", "queryId": i, "udfPath": "q:f", "args": [{}]} for i in range(5)]
    with pytest.raises(
        ProtocolViolation, match=r"Too many queries on one connection \(5; limit: 4"
    ):
        state.modify(0, 1, adds, max_queries=4)
    assert state.queries == {} and state.query_set == 0
    added, removed = state.modify(0, 1, adds[:4], max_queries=4)
    assert ([q.query_id for q in added], removed) == ([0, 1, 2, 3], [])
    with pytest.raises(ProtocolViolation, match="Too many modifications in one ModifyQuerySet"):
        state.modify(1, 2, adds * 2, max_queries=4)  # 10 > 8, before anything is read
