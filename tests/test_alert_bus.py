"""Alert bus and per-call event tap: filters, bounded drop-oldest queues, counters, close."""

from __future__ import annotations

import asyncio

import pytest

from speechiq.alerts.bus import AlertBus, AlertFilter, EventTap, SubscriptionClosed
from speechiq.events import Alert


def alert(i: int, category: str = "compliance", severity: str = "high", call_id: str = "c1",
          **metadata: str) -> Alert:
    return Alert(alert_id=f"a{i}", call_id=call_id, rule_id="r", pack_version="v", label="x.y", category=category,
                 severity=severity, state="confirmed", media_time=float(i), start=0.0, end=1.0, role="agent",
                 text="t", metadata=metadata)


def test_filters_and_drop_oldest():
    async def run():
        bus = AlertBus(queue_size=3)
        sub = bus.subscribe(AlertFilter.from_query({"category": ["compliance,escalation"], "min_severity": ["medium"],
                                                    "queue": ["billing"]}))
        bus.publish(alert(1), {"queue": "billing"})
        bus.publish(alert(2, severity="low"), {"queue": "billing"})  # below min severity
        bus.publish(alert(3, category="sales_opportunity"), {"queue": "billing"})
        bus.publish(alert(4), {"queue": "sales"})  # other queue
        for i in range(5, 10):
            bus.publish(alert(i), {"queue": "billing"})
        got = [(await sub.get()).alert_id for _ in range(sub.pending())]
        return got, sub, bus.stats()

    got, sub, stats = asyncio.run(run())
    assert got == ["a7", "a8", "a9"]  # the newest three; a1, a5, a6 dropped
    assert sub.dropped_total == 3 and sub.take_dropped() == 3 and sub.take_dropped() == 0
    assert stats == {"published": 9, "delivered": 6, "dropped": 3, "subscribers": 1}


@pytest.mark.parametrize(("query", "passes"), [
    ({"severity": ["high+"]}, ["a1", "a3"]),
    ({"severity": ["medium,critical"]}, ["a2", "a3"]),
    ({"severity": ["medium", "critical+"]}, ["a2", "a3"]),  # medium, or critical and above
    ({"severity": ["high "]}, ["a1", "a3"]),  # "high+" in a URL decodes to "high "
    ({"agent": ["a-117"]}, ["a1", "a2"]),  # a1 from the call metadata, a2 from the alert's own metadata
    ({"call_id": ["c2"], "api_key": ["k"]}, ["a3"]),
    ({"label": ["x.y"], "category": ["compliance"]}, ["a1", "a2", "a3"]),
])
def test_filter_fields(query, passes):
    flt = AlertFilter.from_query(query)
    cases = [(alert(1), {"agent_id": "a-117"}), (alert(2, severity="medium", agent_id="a-117"), {}),
             (alert(3, severity="critical", call_id="c2"), {"agent": "a-9"})]
    assert [a.alert_id for a, meta in cases if flt.matches(a, meta)] == passes


@pytest.mark.parametrize("query", [{"severity": ["urgent"]}, {"min_severity": ["hi"]}, {"categroy": ["compliance"]}])
def test_bad_filters_are_refused(query):
    with pytest.raises(ValueError):
        AlertFilter.from_query(query)


def test_tap_per_call_and_wildcard():
    async def run():
        tap = EventTap(10)
        one, every = tap.subscribe("c1"), tap.subscribe("*")
        tap.publish_call_event("c1", "e1")
        tap.publish_call_event("c2", "e2")
        got = [await one.get() for _ in range(one.pending())], [await every.get() for _ in range(every.pending())]
        return got, tap.stats()

    got, stats = asyncio.run(run())
    assert got == (["e1"], ["e1", "e2"])
    assert stats == {"published": 2, "delivered": 3, "dropped": 0, "subscribers": 2}


def test_close_wakes_a_waiting_reader_and_unsubscribes():
    async def run():
        bus = AlertBus(5)
        sub = bus.subscribe()
        waiter = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        sub.close()
        sub.close()  # idempotent
        with pytest.raises(SubscriptionClosed):
            await waiter
        with pytest.raises(SubscriptionClosed):
            await sub.get()
        bus.publish(alert(1))  # nobody listens: no error
        return bus.stats()

    assert asyncio.run(run())["subscribers"] == 0


def test_publish_never_raises():
    async def run():
        bus = AlertBus(1)
        sub = bus.subscribe(AlertFilter(categories=frozenset({"x"})))
        bus.publish(object())  # not an alert: the filter fails, the publisher does not
        bus.publish(alert(1, category="x"), None)
        return await sub.get()

    assert asyncio.run(run()).alert_id == "a1"
