"""The durable store: calls, final transcripts, alerts and call events in SQLite or PostgreSQL
(docs/store.md)."""

from __future__ import annotations

from .read import CallDetail, StoredAlert, StoredCall, StoredEvent, StoredUtterance, StoreReader
from .store import CallStore, open_reader
from .writer import StoreStats

__all__ = [
    "CallDetail",
    "CallStore",
    "StoreReader",
    "StoreStats",
    "StoredAlert",
    "StoredCall",
    "StoredEvent",
    "StoredUtterance",
    "open_reader",
]
