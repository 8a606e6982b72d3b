"""Store URL → SQLAlchemy engine: SQLite (the default) or PostgreSQL, nothing else.

SQLite: WAL journal, ``synchronous=NORMAL`` (a committed transaction survives a process crash;
a power cut can lose only the last transactions, never corrupt the file), foreign keys on, and
the writer's transactions start with ``BEGIN IMMEDIATE`` so two processes on one file wait for
the write lock instead of failing half-way. PostgreSQL: psycopg 3 (``postgresql://`` means
``postgresql+psycopg://``), connections checked before use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from sqlalchemy import event

from ..errors import ConfigError

WRITER_OPTION = "speechiq_writer"  # execution option: this connection writes (BEGIN IMMEDIATE on SQLite)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str, separators=(",", ":"))


def parse_url(url: str) -> sa.URL:
    try:
        u = sa.make_url(url)
    except sa_exc.ArgumentError as exc:
        raise ConfigError(f"store.url: not a database URL: {url!r}") from exc
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    backend = u.get_backend_name()
    if backend == "postgres":
        u = u.set(drivername="postgresql+" + (u.get_driver_name() or "psycopg"))
    elif backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"store.url: {u.drivername!r} is not supported (sqlite:///PATH or postgresql+psycopg://…)")
    if u.get_backend_name() == "sqlite" and (not u.database or u.database == ":memory:"
                                             or u.query.get("mode") == "memory"):
        raise ConfigError("store.url: an in-memory SQLite store loses everything at exit; use sqlite:///PATH")
    return u


def make_engine(url: str | sa.URL, *, sqlite_timeout_s: float = 5.0, connect_timeout_s: float = 10.0,
                pool_size: int = 5) -> sa.Engine:
    """The engine for ``url`` (no connection is made yet). Raises :class:`ConfigError`."""
    u = parse_url(str(url) if isinstance(url, str) else url.render_as_string(hide_password=False))
    kwargs: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": json.loads}
    if u.get_backend_name() == "sqlite":
        Path(u.database or "").expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": sqlite_timeout_s, "check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size,
                      connect_args={"connect_timeout": max(1, round(connect_timeout_s))})
    try:
        engine = sa.create_engine(u, **kwargs)
    except (ModuleNotFoundError, sa_exc.NoSuchModuleError) as exc:
        extra = " (pip install 'speechiq[postgres]')" if u.get_backend_name() == "postgresql" else ""
        raise ConfigError(f"store.url: no driver for {u.drivername}{extra}: {exc}") from exc
    if u.get_backend_name() == "sqlite":
        _sqlite_setup(engine)
    return engine


def _sqlite_setup(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # pysqlite's own BEGIN handling off: we emit BEGIN below
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITER_OPTION) else "BEGIN")


def display_url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


__all__ = ["WRITER_OPTION", "display_url", "make_engine", "parse_url"]
