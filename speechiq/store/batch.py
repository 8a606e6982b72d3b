"""One batch of queued events → statements in the caller's transaction (idempotent).

Every write can be repeated without changing the result — utterances and events are upserts
on their keys, alert histories and call metadata merge — so a batch whose COMMIT outcome is
unknown (the connection died during it) is simply written again.

Call sessions: ``calls.session`` numbers the calls that used one call id (1, 2, …). The
:class:`~speechiq.store.store.CallStore` gives every call it sees its own number (``local``)
and every event of it an ordinal (``seq``) when the event is recorded; the session row keeps
``writer`` = ``<writer id>/<local>``. A batch therefore finds its session again whether or not an
earlier attempt of it committed, and ``call_events`` rows are keyed by the recorded ordinal —
written twice, they are the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from . import schema as S
from .convert import AlertOp, CallPatch, EventOp, Op, UtteranceOp, people

IN_CHUNK = 500


@dataclass
class Pending:
    """One queued event: what ``record`` was given, when, and (once converted) its ops."""

    call_id: str
    event: Any
    at: float  # wall-clock Unix seconds when recorded
    kind: str
    local: int = 0  # the recording store's number for this call (see the module docstring)
    seq: int = 0  # the event's ordinal within its call
    ops: list[Op] | None = None


@dataclass
class _CallAcc:
    first_at: float
    last_at: float
    fields: dict[str, Any] = field(default_factory=dict)
    metas: list[tuple[dict[str, Any], bool]] = field(default_factory=list)
    media_time: float | None = None
    packs: set[str] = field(default_factory=set)
    ended_at: float | None = None

    def add(self, op: CallPatch, at: float) -> None:
        self.fields.update(op.fields)
        if op.metadata is not None:
            self.metas.append((dict(op.metadata), op.replace_metadata))
        if op.media_time is not None:
            self.media_time = op.media_time if self.media_time is None else max(self.media_time, op.media_time)
        if op.pack_version:
            self.packs.add(op.pack_version)
        if op.ends:
            self.ended_at = at


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    vals = list(values)
    for i in range(0, len(vals), IN_CHUNK):
        yield vals[i:i + IN_CHUNK]


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # the store URL is checked up front; this is a programming error
        raise RuntimeError(f"unsupported dialect {name}")
    return insert(table)


class BatchWriter:
    """Applies batches for one writer (one engine process). Not thread-safe: one writer thread."""

    def __init__(self, writer_id: str) -> None:
        self.writer_id = writer_id
        self.live: dict[tuple[str, int], int] = {}  # (call id, local) → session, until its summary

    def key(self, local: int) -> str:
        return f"{self.writer_id}/{local}"

    def write(self, conn: sa.Connection, items: Sequence[Pending]) -> tuple[int, dict[tuple[str, int], int | None]]:
        """Write ``items`` (converted) in ``conn``'s transaction. Returns the rows written and the
        session changes to :meth:`commit` once the transaction has committed."""
        overlay: dict[tuple[str, int], int | None] = {}
        sessions: dict[tuple[str, int], int] = {}
        unknown = {it.call_id for it in items if it.ops and (it.call_id, it.local) not in self.live}
        latest, mine = self._latest(conn, unknown)
        accs: dict[tuple[str, int], _CallAcc] = {}
        utts: dict[tuple[str, int, str], dict[str, Any]] = {}
        alerts: dict[tuple[str, int, str], list[tuple[dict[str, Any], float]]] = {}
        events: dict[tuple[str, int, int], dict[str, Any]] = {}
        writers: dict[tuple[str, int], str] = {}

        def resolve(cid: str, local: int) -> int:
            k = (cid, local)
            found = sessions.get(k, self.live.get(k))
            if found is None:
                found = mine.get((cid, self.key(local)))  # an earlier attempt of this batch committed
            if found is None:
                found = latest[cid] = latest.get(cid, 0) + 1
            sessions[k] = found
            writers[(cid, found)] = self.key(local)
            return found

        for it in items:
            if not it.ops:
                continue
            session = resolve(it.call_id, it.local)
            key = (it.call_id, session)
            acc = accs.get(key)
            if acc is None:
                acc = accs[key] = _CallAcc(first_at=it.at, last_at=it.at)
            acc.last_at = max(acc.last_at, it.at)
            for op in it.ops or ():
                if isinstance(op, CallPatch):
                    acc.add(op, it.at)
                elif isinstance(op, UtteranceOp):
                    utts[(*key, op.row["utterance_id"])] = {**op.row, "call_id": key[0], "session": key[1],
                                                           "emitted_at": op.row.get("emitted_at") or it.at}
                elif isinstance(op, AlertOp):
                    alerts.setdefault((*key, op.row["alert_id"]), []).append((dict(op.row), it.at))
                elif isinstance(op, EventOp):
                    events[(*key, it.seq)] = {"call_id": key[0], "session": key[1], "seq": it.seq, "kind": op.kind,
                                              "media_time": op.media_time, "at": it.at, "data": dict(op.data)}
            overlay[(it.call_id, it.local)] = None if acc.ended_at is not None else session
        rows = self._calls(conn, accs, writers)
        rows += self._utterances(conn, list(utts.values()))
        rows += self._alerts(conn, alerts)
        if events:
            stmt = _insert(conn, S.call_events).on_conflict_do_nothing(index_elements=["call_id", "session", "seq"])
            conn.execute(stmt, list(events.values()))
            rows += len(events)
        return rows, overlay

    def commit(self, overlay: dict[tuple[str, int], int | None]) -> None:
        for k, session in overlay.items():
            if session is None:
                self.live.pop(k, None)
            else:
                self.live[k] = session

    # ---- statements --------------------------------------------------------------------------
    def _latest(self, conn: sa.Connection, call_ids: set[str]) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        """(call id → highest stored session, (call id, writer key) → session) for ``call_ids``."""
        latest: dict[str, int] = {}
        mine: dict[tuple[str, str], int] = {}
        c = S.calls.c
        for chunk in _chunks(sorted(call_ids)):
            for r in conn.execute(sa.select(c.call_id, c.session, c.writer).where(c.call_id.in_(chunk))):
                latest[r.call_id] = max(latest.get(r.call_id, 0), int(r.session))
                mine[(r.call_id, r.writer)] = int(r.session)
        return latest, mine

    def _calls(self, conn: sa.Connection, accs: dict[tuple[str, int], _CallAcc],
               writers: dict[tuple[str, int], str]) -> int:
        if not accs:
            return 0
        c = S.calls.c
        existing: dict[tuple[str, int], Any] = {}
        for chunk in _chunks(sorted({k[0] for k in accs})):
            q = sa.select(c.call_id, c.session, c.meta, c.pack_versions, c.last_media_time).where(
                c.call_id.in_(chunk))
            for r in conn.execute(q):
                if (r.call_id, r.session) in accs:
                    existing[(r.call_id, r.session)] = r
        inserts: list[dict[str, Any]] = []
        for key, acc in accs.items():
            old = existing.get(key)
            meta: dict[str, Any] = dict(old.meta or {}) if old is not None else {}
            for m, replace in acc.metas:
                meta = dict(m) if replace else {**meta, **m}
            packs = set(old.pack_versions or []) if old is not None else set()
            packs |= acc.packs
            media = acc.media_time
            if old is not None and old.last_media_time is not None:
                media = old.last_media_time if media is None else max(media, old.last_media_time)
            values: dict[str, Any] = {**acc.fields, "updated_at": acc.last_at, "last_media_time": media,
                                      "pack_versions": sorted(packs)}
            if acc.metas or old is None:
                values.update(meta=meta, **people(meta))
            if acc.ended_at is not None:
                values["ended_at"] = acc.ended_at
            if old is None:
                inserts.append({**values, "call_id": key[0], "session": key[1], "started_at": acc.first_at,
                                "writer": writers[key]})
            else:
                conn.execute(sa.update(S.calls).where(c.call_id == key[0], c.session == key[1]).values(**values))
        if inserts:
            cols = {k for row in inserts for k in row}
            conn.execute(sa.insert(S.calls), [{k: row.get(k) for k in cols} for row in inserts])
        return len(accs)

    def _utterances(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        cols = {k for row in rows for k in row}
        rows = [{k: row.get(k) for k in cols} for row in rows]
        stmt = _insert(conn, S.utterances)
        keys = ("call_id", "session", "utterance_id")
        stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                          set_={k: stmt.excluded[k] for k in cols if k not in keys})
        conn.execute(stmt, rows)
        return len(rows)

    def _alerts(self, conn: sa.Connection, states: dict[tuple[str, int, str], list[tuple[dict[str, Any], float]]]
                ) -> int:
        if not states:
            return 0
        a = S.alerts.c
        existing: dict[tuple[str, int, str], Any] = {}
        for chunk in _chunks(sorted({k[2] for k in states})):
            q = sa.select(a.call_id, a.session, a.alert_id, a.history, a.evidence, a.first_media_time,
                          a.last_media_time, a.created_at, a.updated_at).where(a.alert_id.in_(chunk))
            for r in conn.execute(q):
                if (r.call_id, r.session, r.alert_id) in states:
                    existing[(r.call_id, r.session, r.alert_id)] = r
        inserts: list[dict[str, Any]] = []
        for key, seq in states.items():
            old = existing.get(key)
            history: list[dict[str, Any]] = list(old.history or []) if old is not None else []
            times = [r["media_time"] for r, _ in seq]
            first, last = min(times), max(times)
            for row, at in seq:
                when = row.get("emitted_at") or at
                entry = {"state": row["state"], "media_time": row["media_time"], "at": _utc(when).isoformat()}
                if entry not in history:
                    history.append(entry)
            history.sort(key=lambda h: h["at"])  # ISO 8601 UTC: text order is time order
            latest, latest_at = seq[-1]
            values = {k: v for k, v in latest.items() if k != "emitted_at"}
            values.update(history=history, updated_at=latest.get("emitted_at") or latest_at)
            if not values.get("evidence"):  # a state change without evidence keeps the earlier evidence
                earlier = [r["evidence"] for r, _ in seq if r.get("evidence")]
                values["evidence"] = earlier[-1] if earlier else (list(old.evidence or []) if old is not None else [])
            if old is None:
                first_at = seq[0][0].get("emitted_at") or seq[0][1]
                inserts.append({**values, "call_id": key[0], "session": key[1], "first_media_time": first,
                                "last_media_time": last, "created_at": first_at})
            else:
                values.update(first_media_time=min(first, old.first_media_time),
                              last_media_time=max(last, old.last_media_time))
                if _utc(values["updated_at"]) < old.updated_at:  # an older state written again: keep the
                    values = {k: values[k] for k in ("history", "first_media_time", "last_media_time")}  # newer
                conn.execute(sa.update(S.alerts).where(a.call_id == key[0], a.session == key[1],
                                                       a.alert_id == key[2]).values(**values))
        if inserts:
            cols = {k for row in inserts for k in row}
            conn.execute(sa.insert(S.alerts), [{k: row.get(k) for k in cols} for row in inserts])
        return len(states)


__all__ = ["BatchWriter", "Pending"]
