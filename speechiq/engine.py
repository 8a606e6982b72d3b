"""The engine: one shared ASR scheduler, the live calls, analytics and alert fan-out.

Transport shells (WebSocket server, AudioSocket TCP server, offline transcribe) open calls here
and get a :class:`CallBinding` back; they never touch the scheduler or the model directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import OverloadError, ProtocolError
from .events import Summary
from .ingest import CallEnd, CallStart, Dtmf, Gap, IngestEvent, MetadataUpdate
from .metrics import EngineMetrics
from .pipeline.session import CallSession
from .settings import Settings

log = logging.getLogger(__name__)
CLOSE_SUPERSEDED = 4009


@dataclass
class CallBinding:
    """One connection's view of a call (a joined leg maps its channels into the call's)."""

    engine: Engine
    session: CallSession
    sink: Callable[[Any], None]
    channel_map: dict[int, int] = field(default_factory=dict)
    resumed: bool = False
    joined: bool = False
    superseded: bool = False  # another connection resumed this call while this one was attached

    def handle(self, event: IngestEvent) -> None:
        if self.superseded:
            raise ProtocolError("superseded", "another connection resumed this call", CLOSE_SUPERSEDED)
        store = self.engine.store
        if store is not None and isinstance(event, Dtmf | MetadataUpdate | Gap) and not self.session.finished:
            stored: Dtmf | MetadataUpdate | Gap = event  # with the call's channel numbers (a joined leg's differ)
            if isinstance(event, Gap | Dtmf) and self.channel_map and event.channel is not None:
                stored = dataclasses.replace(event, channel=self.channel_map.get(event.channel, event.channel))
            store.record_ingest(self.session.call_id, stored, self.session.media_time)
        self.session.handle(event, self.channel_map or None)

    async def end(self, event: CallEnd) -> Summary | None:
        """Finalise the call, or — for a lost transport — keep it for the resume grace window."""
        return await self.engine.end_binding(self, event)


class Engine:
    def __init__(self, settings: Settings, *, metrics: EngineMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or EngineMetrics()
        self.sessions: dict[str, CallSession] = {}
        self._by_token: dict[str, CallSession] = {}
        self._by_join: dict[str, CallSession] = {}
        self._bindings: dict[str, list[CallBinding]] = {}
        self._grace: dict[str, asyncio.TimerHandle] = {}
        self._finishing: set[asyncio.Task[Any]] = set()
        self.model_info: Any = None
        self.scheduler: Any = None
        self.decoder: Any = None
        self.packs: Any = None
        self.sentiment: Any = None
        self.semantic: Any = None
        self.bus: Any = None
        self.tap: Any = None
        self.webhooks: Any = None
        self.store: Any = None  # speechiq.store.CallStore while store.url is set

    # ---- lifecycle ---------------------------------------------------------------------------
    def load(self) -> Engine:
        """Load the model and start the ASR workers (blocking: call before serving)."""
        from .asr.decoder import BatchDecoder
        from .asr.models import load_model
        from .asr.plain import PlainDecoder
        from .asr.scheduler import AsrScheduler

        model, info = load_model(self.settings.asr)
        self.model_info = info
        decoder_cls = PlainDecoder if self.settings.asr.decoder == "plain" else BatchDecoder
        self.decoder = decoder_cls(model, self.settings.asr, info.multilingual)
        self.scheduler = AsrScheduler(self.decoder, self.settings.asr)
        self.scheduler.start()
        self._load_analytics()
        self.open_store()
        return self

    def open_store(self) -> Any:
        """Open the durable store named by ``store.url`` (no-op when disabled or already open).
        Blocking only for the URL check: the writer thread connects and creates the schema."""
        if self.store is None and self.settings.store.enabled:
            from .store import CallStore
            from .store.metrics import register

            self.store = CallStore.from_settings(self.settings.store)
            try:
                register(self.metrics.registry, self.store)
            except ValueError:  # metrics shared with another engine that registered its store
                log.warning("store metrics already registered on this registry; not exported twice")
        return self.store

    def _load_analytics(self) -> None:
        from .alerts.bus import AlertBus, EventTap

        self.bus = AlertBus(self.settings.alerts.subscriber_queue)
        self.tap = EventTap(self.settings.alerts.subscriber_queue)
        if not self.settings.analytics.enabled:
            return
        from .analytics.sentiment import make_scorer
        from .rules.registry import PackRegistry

        self.packs = PackRegistry(list(self.settings.analytics.rule_packs))
        self.sentiment = make_scorer(self.settings.analytics)
        self._ensure_semantic(self.packs.current())

    def _ensure_semantic(self, pack: Any) -> None:
        """Load the sentence-embedding model once, when a pack first needs it."""
        if self.semantic is None and self.settings.analytics.semantic and pack.has_semantic:
            from .rules.semantic import load_semantic_model

            self.semantic = load_semantic_model()

    async def start_background(self) -> None:
        """Start async helpers that need a running loop (webhooks)."""
        if self.settings.alerts.webhooks:
            from .alerts.webhooks import WebhookSender

            a = self.settings.alerts
            self.webhooks = WebhookSender(list(a.webhooks), a.webhook_secret, a.webhook_retries,
                                          a.subscriber_queue)
            await self.webhooks.start()

    async def close(self) -> None:
        for handle in self._grace.values():
            handle.cancel()
        for sid in list(self.sessions):
            s = self.sessions.get(sid)
            if s is not None and s.summary is None:
                await self._finish(s, "shutdown")
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)
        if self.webhooks is not None:
            await self.webhooks.close()
        if self.store is not None:  # every call has emitted its summary: write it all, then stop
            store, self.store = self.store, None
            if not await asyncio.to_thread(store.close, self.settings.store.close_timeout_s):
                log.error("store: shut down with events not written (%s)", store.stats())
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.stop, 30.0)

    # ---- calls -------------------------------------------------------------------------------
    def new_analytics(self, session: CallSession) -> Any:
        if self.packs is None:
            return None
        if self.settings.analytics.reload:
            self.packs.maybe_reload()
        from .analytics.engine import CallAnalytics

        pack = self.packs.current()
        self._ensure_semantic(pack)
        return CallAnalytics(session.call_id, pack, language=session.language,
                             metadata=session.metadata, sentiment=self.sentiment, semantic=self.semantic)

    @property
    def active_calls(self) -> int:
        return sum(1 for s in self.sessions.values() if s.summary is None)

    def open_call(self, start: CallStart, sink: Callable[[Any], None]) -> CallBinding:
        """Start, resume or join a call. Raises ProtocolError / OverloadError to refuse it."""
        if start.resume_token:
            session = self._by_token.get(start.resume_token) or self._resumable(start.resume_token)
            if session is not None and session.summary is None:
                return self._resume(session, start, sink)
            if start.platform == "speechiq":
                raise ProtocolError("unknown_resume_token",
                                    "resume_token matches no call in its grace window", 4004)
        join_key = start.metadata.get("join_key")
        if join_key and join_key in self._by_join and self._by_join[join_key].summary is None:
            session = self._by_join[join_key]
            cmap = {spec.index: session.add_channel(spec, start.sample_rate, start.encoding)
                    for spec in start.channels}
            session.attach(sink)
            if self.store is not None:
                self.store.record(session.call_id, {
                    "type": "leg_joined", "media_time": session.media_time, "platform": start.platform,
                    "leg_call_id": start.call_id, "channels": [
                        {"index": cmap[c.index], "role": c.role, "name": c.name} for c in start.channels]})
            binding = CallBinding(self, session, sink, channel_map=cmap, joined=True)
            self._bindings.setdefault(session.call_id, []).append(binding)
            return binding
        existing = self.sessions.get(start.call_id)
        if existing is not None and existing.summary is None:
            raise ProtocolError("call_id_in_use", f"call {start.call_id!r} is already streaming", 1008)
        if self.active_calls >= self.settings.server.max_calls:
            self.metrics.calls_refused.labels("max_calls").inc()
            raise OverloadError(f"at capacity ({self.settings.server.max_calls} calls)")
        if self.scheduler is not None and self.scheduler.overloaded:
            self.metrics.calls_refused.labels("asr_overloaded").inc()
            raise OverloadError("ASR queue above its high-water mark: try again later")
        session = CallSession(self, start)
        session.attach(sink)
        if self.store is not None:
            self.store.record_ingest(session.call_id, dataclasses.replace(start, resume_token=None), 0.0,
                                     session.language if session.language != "auto" else None)
        self.sessions[session.call_id] = session
        self._by_token[session.resume_token] = session
        if join_key:
            self._by_join[join_key] = session
        binding = CallBinding(self, session, sink)
        self._bindings[session.call_id] = [binding]
        self.metrics.calls_started.labels(start.platform).inc()
        self.metrics.active_calls.set(self.active_calls)
        return binding

    def _resume(self, session: CallSession, start: CallStart, sink: Callable[[Any], None]) -> CallBinding:
        """Re-attach a call: the timeline continues, and the events emitted while no connection
        was attached reach the new one right after its ``started``. A connection that is still
        attached (its drop not yet noticed) is superseded: it gets no more events and its next
        connection is closed with code 4009 (``superseded``) at once."""
        legs = self._bindings.setdefault(session.call_id, [])
        primary = [b for b in legs if not b.joined]
        if len(start.channels) != len(session.start.channels):
            raise ProtocolError("resume_mismatch", f"the call has {len(session.start.channels)} channel(s); "
                                f"the resuming stream declares {len(start.channels)}", 1008)
        for old in primary:
            old.superseded = True
            session.detach(old.sink)
            legs.remove(old)
            close = getattr(old.sink, "close", None)  # a connection's sink: close it now, not on its next frame
            if close is not None:
                close(CLOSE_SUPERSEDED, "superseded", "another connection resumed this call")
        if primary:
            log.info("call %s: resumed while still attached; the old connection is superseded", session.call_id)
        handle = self._grace.pop(session.call_id, None)
        if handle:
            handle.cancel()
        if (start.sample_rate, start.encoding) != (session.sample_rate, session.encoding):
            session.retune(start)
        session.attach(sink, resume=True, after_seq=start.last_seq)
        if self.store is not None:  # the same stored call continues: only the resume is recorded
            self.store.record(session.call_id, session.started_event(resumed=True))
        asyncio.get_running_loop().call_soon(session.replay_missed, sink)  # after the caller's started
        binding = CallBinding(self, session, sink, resumed=True)
        legs.append(binding)
        self.metrics.calls_resumed.inc()
        return binding

    def _resumable(self, key: str) -> CallSession | None:
        s = self.sessions.get(key)
        return s if s is not None and s.call_id in self._grace else None

    async def end_binding(self, binding: CallBinding, event: CallEnd) -> Summary | None:
        session = binding.session
        if binding.superseded:  # its call continues on the connection that resumed it
            return None
        legs = self._bindings.get(session.call_id, [])
        if binding in legs:
            legs.remove(binding)
        if self.store is not None and session.summary is None and not binding.joined:
            self.store.record_ingest(session.call_id, event, session.media_time)
        grace = self.settings.server.resume_grace_s
        if session.summary is not None or legs or (
                event.reason in ("transport_lost", "reconnect") and grace > 0):
            session.detach(binding.sink)
            if session.summary is None and not legs:
                loop = asyncio.get_running_loop()
                self._grace[session.call_id] = loop.call_later(grace, self._grace_expired, session)
            return session.summary
        summary = await self._finish(session, event.reason)  # the sink still gets finals + summary
        session.detach(binding.sink)
        return summary

    def _grace_expired(self, session: CallSession) -> None:
        self._grace.pop(session.call_id, None)
        task = asyncio.ensure_future(self._finish(session, "transport_lost"))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)

    async def _finish(self, session: CallSession, reason: str) -> Summary:
        summary = await session.finish(reason)
        self.metrics.calls_ended.labels(reason).inc()
        self._by_token.pop(session.resume_token, None)
        join_key = session.metadata.get("join_key")
        if join_key:
            self._by_join.pop(join_key, None)
        self._bindings.pop(session.call_id, None)
        self.sessions.pop(session.call_id, None)
        self.metrics.active_calls.set(self.active_calls)
        self.on_call_finished(session, summary)
        return summary

    def on_call_finished(self, session: CallSession, summary: Summary) -> None:
        """Hook after a call is finalised (the store already got its summary as a call event)."""

    # ---- fan-out -----------------------------------------------------------------------------
    def publish_alert(self, session: CallSession, alert: Any) -> None:
        if self.bus is not None:
            self.bus.publish(alert, session.metadata)
        if self.webhooks is not None:
            self.webhooks.submit(alert)

    def publish_call_event(self, call_id: str, event: Any) -> None:
        if self.tap is not None:
            self.tap.publish_call_event(call_id, event)
        if self.store is not None and call_id in self.sessions:  # queued: never blocks the loop
            self.store.record(call_id, event)
