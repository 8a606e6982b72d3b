"""The store's tables (SQLAlchemy Core), versioned; created on first use.

One row per call *session* in ``calls``: a call id that is used again after its call ended
(our protocol refuses only a second *live* call with the same id) gets the next ``session``
number instead of overwriting the first call. Every child table is keyed by
``(call_id, session, …)`` and cascades on delete, so retention is one ``DELETE FROM calls``.

Times: ``*_at`` columns are wall-clock UTC (``UtcDateTime``); every other time is seconds of
call audio (media time), like the events they come from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from ..errors import ConfigError

SCHEMA_VERSION = 1


class UtcDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text, sortable).

    Binds accept an aware or naive-UTC ``datetime`` or Unix seconds."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, int | float):
            value = dt.datetime.fromtimestamp(float(value), dt.UTC)
        if not isinstance(value, dt.datetime):
            raise TypeError(f"not a datetime: {value!r}")
        value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
MEDIA = sa.Float  # seconds of call audio

metadata = sa.MetaData()

store_schema = sa.Table(
    "store_schema", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

calls = sa.Table(
    "calls", metadata,
    sa.Column("call_id", sa.String, primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("platform", sa.String),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),  # NULL while the call is live (or was never summarised)
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("duration", MEDIA),  # from the summary
    sa.Column("last_media_time", MEDIA),  # latest media time seen (live progress)
    sa.Column("language", sa.String),
    sa.Column("end_reason", sa.String),
    sa.Column("metadata", JSONType, nullable=False, key="meta"),
    sa.Column("agent", sa.String),  # metadata agent_id / agent, for filters
    sa.Column("queue", sa.String),  # metadata queue
    sa.Column("sample_rate", sa.Integer),
    sa.Column("channels", JSONType),  # [{"index", "role", "name"}]
    sa.Column("pack_version", sa.String),  # the pack the call was analysed with (summary)
    sa.Column("pack_versions", JSONType, nullable=False),  # every version seen on its alerts
    sa.Column("summary", JSONType),  # the summary event as sent
    sa.Column("nev", sa.Float),
    sa.Column("ces", sa.Float),
    sa.Column("nps_proxy", sa.String),
    sa.Column("nps_reason", sa.String),
    sa.Column("customer_sentiment", sa.Float),  # mean utterance sentiment of the role (summary)
    sa.Column("agent_sentiment", sa.Float),
    sa.Column("utterance_count", sa.Integer),
    sa.Column("alert_count", sa.Integer),  # confirmed alerts (summary)
    # host:pid:nonce/N: the engine process that wrote the session and its own number for it, so a
    # batch written again after an unknown COMMIT outcome finds its session instead of a new one
    sa.Column("writer", sa.String, nullable=False),
    sa.Index("ix_calls_started_at", "started_at"),
    sa.Index("ix_calls_agent_started", "agent", "started_at"),
    sa.Index("ix_calls_queue_started", "queue", "started_at"),
)


def _call_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["call_id", "session"], ["calls.call_id", "calls.session"], ondelete="CASCADE")


utterances = sa.Table(
    "utterances", metadata,
    sa.Column("call_id", sa.String, primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("utterance_id", sa.String, primary_key=True),
    sa.Column("channel", sa.Integer, nullable=False),
    sa.Column("role", sa.String, nullable=False),
    sa.Column("media_start", MEDIA, nullable=False),
    sa.Column("media_end", MEDIA, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("language", sa.String),
    sa.Column("words", JSONType),  # [{"text", "start", "end", "probability"}]
    sa.Column("sentiment", sa.Float),
    sa.Column("sentiment_label", sa.String),
    sa.Column("avg_logprob", sa.Float),
    sa.Column("no_speech_prob", sa.Float),
    sa.Column("emitted_at", UtcDateTime),
    _call_fk(),
    sa.Index("ix_utterances_call_time", "call_id", "session", "media_start"),
)

alerts = sa.Table(
    "alerts", metadata,
    sa.Column("call_id", sa.String, primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("alert_id", sa.String, primary_key=True),
    sa.Column("rule_id", sa.String, nullable=False),
    sa.Column("pack_version", sa.String, nullable=False),
    sa.Column("label", sa.String),
    sa.Column("category", sa.String, nullable=False),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False),  # latest: provisional | confirmed | retracted
    sa.Column("media_time", MEDIA, nullable=False),  # of the latest state
    sa.Column("first_media_time", MEDIA, nullable=False),
    sa.Column("last_media_time", MEDIA, nullable=False),
    sa.Column("media_start", MEDIA),  # the triggering utterance's span
    sa.Column("media_end", MEDIA),
    sa.Column("role", sa.String),
    sa.Column("text", sa.Text),
    sa.Column("description", sa.Text),
    sa.Column("evidence", JSONType, nullable=False),  # [{"utterance_id", "spans", "start", "end", …}]
    sa.Column("metadata", JSONType, nullable=False, key="meta"),
    sa.Column("history", JSONType, nullable=False),  # [{"state", "media_time", "at"}] in order
    sa.Column("created_at", UtcDateTime, nullable=False),  # first emitted
    sa.Column("updated_at", UtcDateTime, nullable=False),  # latest state emitted
    _call_fk(),
    sa.Index("ix_alerts_created", "created_at"),
    sa.Index("ix_alerts_category_created", "category", "created_at"),
    sa.Index("ix_alerts_label_created", "label", "created_at"),
    sa.Index("ix_alerts_rule", "rule_id", "pack_version"),
)

call_events = sa.Table(
    "call_events", metadata,
    sa.Column("call_id", sa.String, primary_key=True),
    sa.Column("session", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),  # order within the call
    sa.Column("kind", sa.String, nullable=False),  # call_open | started | resumed | dtmf | metadata | notice | …
    sa.Column("media_time", MEDIA),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("data", JSONType, nullable=False),
    _call_fk(),
    sa.Index("ix_call_events_kind_at", "kind", "at"),
)


class SchemaVersionError(ConfigError):
    """The database was created by a newer speechiq (or is not a speechiq store)."""


# version → DDL/DML bringing the schema from version-1 to version (none yet: v1 is the first).
MIGRATIONS: dict[int, Any] = {}


def ensure_schema(conn: sa.Connection, pg_schema: str | None = None) -> int:
    """Create missing tables (and the PostgreSQL schema ``pg_schema``, when named) and bring an
    older schema up to :data:`SCHEMA_VERSION` (in the caller's transaction). Returns the version
    found (0: a new store)."""
    if pg_schema is not None:
        quoted = conn.dialect.identifier_preparer.quote_identifier(pg_schema)
        conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
    metadata.create_all(conn, checkfirst=True)
    now = dt.datetime.now(dt.UTC)
    row = conn.execute(sa.select(store_schema.c.version).where(store_schema.c.id == 1)).first()
    if row is None:
        conn.execute(sa.insert(store_schema).values(id=1, version=SCHEMA_VERSION, created_at=now, updated_at=now))
        return 0
    found = int(row.version)
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(f"the store's schema is version {found}; this speechiq knows up to "
                                 f"{SCHEMA_VERSION} (upgrade speechiq)")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version](conn)
    if found < SCHEMA_VERSION:
        conn.execute(sa.update(store_schema).where(store_schema.c.id == 1)
                     .values(version=SCHEMA_VERSION, updated_at=now))
    return found


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SchemaVersionError",
    "UtcDateTime",
    "alerts",
    "call_events",
    "calls",
    "ensure_schema",
    "metadata",
    "store_schema",
    "utterances",
]
