"""``simulator.events``: actions and arrivals in time order, in virtual time."""

from __future__ import annotations

from simulator.events import EventQueue


def test_actions_and_arrivals_run_in_time_order() -> None:
    events = EventQueue()
    seen: list[tuple[str, float]] = []

    def action(time: float, name: str) -> None:
        seen.append((name, time))
        if name == "b":  # an action may schedule another
            events.schedule(time + 0.5, action, "c")

    events.schedule(2.0, action, "b")
    events.schedule(1.0, action, "a")
    events.run([0.5, 1.5, 2.2, 2.7], lambda t: seen.append(("arrival", t)), until=3.0)
    assert seen == [
        ("arrival", 0.5),
        ("a", 1.0),
        ("arrival", 1.5),
        ("b", 2.0),
        ("arrival", 2.2),
        ("c", 2.5),
        ("arrival", 2.7),
    ]
    assert events.now == 3.0


def test_ties_go_to_actions_first_then_in_scheduling_order() -> None:
    events = EventQueue()
    seen: list[str] = []
    for name in ("first", "second", "third"):
        events.schedule(1.0, lambda time, n: seen.append(n), name)
    events.run([1.0], lambda t: seen.append("arrival"), until=1.0)
    assert seen == ["first", "second", "third", "arrival"]


def test_a_run_stops_at_until_and_the_next_goes_on() -> None:
    events = EventQueue()
    seen: list[float] = []
    events.schedule(5.0, lambda time, _: seen.append(time))
    events.schedule(5.5, lambda time, _: seen.append(time))
    events.run([], lambda t: None, until=5.0)  # inclusive
    assert seen == [5.0] and len(events) == 1 and events.now == 5.0
    arrivals: list[float] = []
    events.run([5.2], arrivals.append, until=10.0)
    assert seen == [5.0, 5.5] and arrivals == [5.2] and events.now == 10.0
