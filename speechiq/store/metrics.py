"""The store's counters as Prometheus metrics, read from :meth:`CallStore.stats` on each scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_COUNTERS = (
    ("enqueued", "speechiq_store_events_enqueued", "Events accepted by the store"),
    ("events_written", "speechiq_store_events_written", "Events committed to the database"),
    ("rows_written", "speechiq_store_rows_written", "Rows inserted or updated"),
    ("batches", "speechiq_store_batches", "Committed write transactions"),
    ("retries", "speechiq_store_retries", "Failed write attempts that were retried"),
    ("dropped", "speechiq_store_dropped", "Events refused: the in-memory queue was full (database down) "
                                          "or the store closed"),
    ("failed", "speechiq_store_failed", "Events the database refused (logged with their content)"),
)


class StoreCollector(Collector):
    def __init__(self, store: Any) -> None:
        self.store = store

    def collect(self) -> Iterator[Any]:
        st = self.store.stats()
        for attr, name, doc in _COUNTERS:
            yield CounterMetricFamily(name, doc, value=getattr(st, attr))
        yield GaugeMetricFamily("speechiq_store_pending", "Events accepted and not yet committed", value=st.pending)
        yield GaugeMetricFamily("speechiq_store_healthy", "1 while the last write succeeded, 0 while failing",
                                value=0 if st.last_error else 1)


def register(registry: CollectorRegistry, store: Any) -> StoreCollector:
    collector = StoreCollector(store)
    registry.register(collector)
    return collector


__all__ = ["StoreCollector", "register"]
