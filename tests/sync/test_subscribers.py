"""`Subscribers` (app/sync/subscribers.py) against the dict it replaced.

It holds a lone subscriber in slots and makes a dict only for a second: any sequence of
adds and removes must read exactly as a dict of query-id counts would.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.sync.subscribers import Subscribers


class Socket:
    """A subscriber: equal only to itself, as socket sessions are."""


SOCKETS = [Socket() for _ in range(4)]
steps = st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=40)


@settings(max_examples=400, deadline=None)
@given(steps=steps)
def test_any_adds_and_removes_read_as_the_counts_a_dict_keeps(
    steps: list[tuple[bool, int]],
) -> None:
    subscribers: Subscribers[Socket] = Subscribers()
    model: dict[Socket, int] = {}
    for adding, n in steps:
        socket = SOCKETS[n]
        if adding:
            subscribers.add(socket)
            model[socket] = model.get(socket, 0) + 1
        else:
            subscribers.remove(socket)  # (removing one it does not hold changes nothing)
            if socket in model:
                model[socket] -= 1
                if not model[socket]:
                    del model[socket]
        assert subscribers == model and dict(subscribers) == model
        assert bool(subscribers) == bool(model) and len(subscribers) == len(model)
        assert sum(subscribers.values()) == sum(model.values())
        assert all((s in subscribers) == (s in model) for s in SOCKETS)
        for socket in subscribers:  # iterating while changing it is safe
            subscribers.remove(socket)
            subscribers.add(socket)
        assert subscribers == model


def test_one_subscriber_is_held_without_a_dict() -> None:
    subscribers: Subscribers[Socket] = Subscribers()
    a, b = SOCKETS[0], SOCKETS[1]
    subscribers.add(a)
    subscribers.add(a)
    assert subscribers._many is None and subscribers == {a: 2}
    subscribers.add(b)
    assert subscribers._many == {a: 2, b: 1}
    subscribers.remove(b)
    subscribers.remove(a)
    subscribers.remove(a)
    assert subscribers._many is None and not subscribers
