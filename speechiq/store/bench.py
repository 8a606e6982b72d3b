"""Quick store write throughput: ``python -m speechiq.store.bench URL [--calls N] [--finals N]``.

Records N synthetic calls (start, finals with words and sentiment, an alert provisional →
confirmed, DTMF, a hold, the end and the summary) as fast as ``record`` accepts them, then waits
for the writer to commit everything. Prints producer cost per event (what the event loop pays)
and committed rows/s. With ``--schema`` (PostgreSQL) the tables go into that schema, which is
created and dropped around the run.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from typing import Any

import sqlalchemy as sa

from ..events import Alert, Evidence, Summary, Transcript, Word
from ..ingest import CallEnd, CallStart, ChannelSpec, Dtmf, Encoding, Gap
from .store import CallStore


class _Recorder:
    """Collects the calls' record()/record_ingest() calls so the timed part only records."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def record(self, *args: Any) -> None:
        self.calls.append(("record", args))

    def record_ingest(self, *args: Any) -> None:
        self.calls.append(("record_ingest", args))


def _call(store: Any, cid: str, finals: int) -> None:
    start = CallStart(call_id=cid, encoding=Encoding.MULAW, sample_rate=8000, language="en",
                      channels=(ChannelSpec(0, "agent"), ChannelSpec(1, "customer")),
                      metadata={"queue": "billing", "agent_id": "a-1"})
    store.record_ingest(cid, start, 0.0, "en")
    for i in range(finals):
        role = "customer" if i % 2 else "agent"
        t = 3.0 * i
        text = "thank you for calling how can I help you today"
        words = tuple(Word(w, t + 0.2 * k, t + 0.2 * k + 0.15, 0.9) for k, w in enumerate(text.split()))
        store.record(cid, Transcript(cid, i % 2, role, f"{cid}:{i}", True, t, t + 2.5, text, words, "en",
                                     sentiment=0.1, sentiment_label="neutral", emitted_at=time.time()))
        if i == 3:
            ev = (Evidence(f"{cid}:{i}", role, i % 2, t, t + 2.5, text, ((0, 9),), 0.1),)
            for state, mt in (("provisional", t + 1.0), ("confirmed", t + 2.5)):
                store.record(cid, Alert(f"{cid}:r:{i}", cid, "sales.interest", "pv1", "sales.interest",
                                        "sales_opportunity", "info", state, mt, t, t + 2.5, role, text, "",
                                        ev, {}, time.time()))
        if i == 5:
            store.record_ingest(cid, Dtmf("1"), t)
            store.record_ingest(cid, Gap(2.0, reason="pause"), t)
    store.record_ingest(cid, CallEnd("normal"), 3.0 * finals)
    store.record(cid, Summary(cid, 3.0 * finals, finals, {}, alerts=1,
                              analytics={"nev": 0.1, "ces": 0.2, "nps_proxy": "passive"}))


def run(url: str, calls: int, finals: int, schema: str | None = None) -> dict[str, Any]:
    store = CallStore(url, schema=schema)
    try:
        store.record("warmup", {"type": "notice", "code": "warmup", "message": ""})
        store.flush(60)  # schema created, connections open
        base = store.stats()
        rec = _Recorder()
        for k in range(calls):
            _call(rec, f"bench-{secrets.token_hex(4)}-{k}", finals)
        events = len(rec.calls)
        t0 = time.perf_counter()
        for name, args in rec.calls:
            getattr(store, name)(*args)
        t1 = time.perf_counter()
        ok = store.flush(600)
        t2 = time.perf_counter()
        st = store.stats()
    finally:
        store.close()
    rows = st.rows_written - base.rows_written
    return {"url": store.url, "calls": calls, "events": events, "flushed": ok, "rows": rows,
            "batches": st.batches - base.batches, "record_us_per_event": round((t1 - t0) / events * 1e6, 2),
            "elapsed_s": round(t2 - t0, 3), "rows_per_s": round(rows / (t2 - t0)),
            "events_per_s": round(events / (t2 - t0)), "dropped": st.dropped, "failed": st.failed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--finals", type=int, default=40)
    p.add_argument("--schema", help="PostgreSQL: a scratch schema, created and dropped")
    args = p.parse_args(argv)
    admin = None
    if args.schema:
        admin = sa.create_engine(CallStore(args.url, start=False).engine.url)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"')
    try:
        print(json.dumps(run(args.url, args.calls, args.finals, args.schema)))
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
            admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
