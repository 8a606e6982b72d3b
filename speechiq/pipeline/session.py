"""A live call: ingest events in; transcripts, alerts and a summary out — all in media time.

Runs on the event loop. Audio work per frame is small and bounded (decode, resample, VAD);
ASR goes to the shared scheduler, whose worker threads call back through
``loop.call_soon_threadsafe``. Finals are emitted in order per channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..asr.decoder import DecodeRequest, DecodeResult
from ..asr.scheduler import AsrJob
from ..events import Notice, Started, Summary, Transcript
from ..ingest import AudioChunk, CallEnd, CallStart, ChannelSpec, Dtmf, Encoding, Gap, IngestEvent, MetadataUpdate
from ..vad.endpointer import Segment
from .channel import (
    ChannelState,
    feed_channel,
    flush_channel,
    gap_channel,
    make_channel,
    media_time,
    retune_channel,
    split_channels,
)
from .early import EarlyFinals
from .enrich import Enrichment, enrich
from .outlet import CallOutlet

if TYPE_CHECKING:
    from ..engine import Engine

log = logging.getLogger(__name__)
Sink = Callable[[Any], None]
FINISH_TIMEOUT_S = 120.0
RETRY_DELAY_S = 0.05


class CallSession:
    def __init__(self, engine: Engine, start: CallStart) -> None:
        self.engine = engine
        self.start = start
        self.call_id = start.call_id
        self.platform = start.platform
        self.language = start.language if start.language != "auto" else engine.settings.asr.language
        self.metadata: dict[str, Any] = dict(start.metadata)
        self.resume_token = secrets.token_urlsafe(18)
        self.loop = asyncio.get_running_loop()
        self.channels: dict[int, ChannelState] = {}
        for spec in start.channels:
            self.channels[spec.index] = make_channel(spec, start.sample_rate, engine.settings.vad, start.encoding)
        self.sample_rate = start.sample_rate
        self.encoding = start.encoding
        self.outlet = CallOutlet(self.call_id, engine.publish_call_event)
        self._pending_finals = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._next_emit: dict[int, int] = {i: 0 for i in self.channels}
        self._held: dict[int, dict[int, Transcript | None]] = {i: {} for i in self.channels}
        self._final_text: dict[str, str] = {}
        self._extras: dict[str, Enrichment] = {}  # finals held back for ordering
        self.finals = 0
        self._role_finals: dict[int, int] = {}
        self._role_words: dict[int, int] = {}
        self.partials_shed = 0
        self.dropped_finals = 0
        self.alert_count = 0
        self._overload_noticed = False
        self._last_advance = 0.0
        self._open_speech: dict[int, float] = {}  # channel -> start of its open VAD utterance
        self.finished = False
        self.summary: Summary | None = None
        self.created = time.monotonic()
        self.analytics = engine.new_analytics(self)
        self.early = EarlyFinals(self)

    # ---- connections -----------------------------------------------------------------------
    def attach(self, sink: Sink, *, resume: bool = False, after_seq: int | None = None) -> None:
        """``resume=True``: the events emitted while no connection was attached (or, with
        ``after_seq``, every numbered event after that one) are delivered on :meth:`replay_missed`
        (after the connection's ``started``), before anything new."""
        self.outlet.attach(sink, resume=resume, after_seq=after_seq)

    def replay_missed(self, sink: Sink) -> int:
        n = self.outlet.replay(sink)
        if n:
            log.info("call %s: %d events delivered to the resumed connection", self.call_id, n)
        return n

    def detach(self, sink: Sink) -> None:
        self.outlet.detach(sink)

    def retune(self, start: CallStart) -> None:
        """A resumed connection streams this call's channels at another rate or encoding."""
        primary = list(self.channels.values())[: len(self.start.channels)]
        for ch in primary:
            self._submit_finals(ch, retune_channel(ch, start.sample_rate, start.encoding))
        self.sample_rate, self.encoding = start.sample_rate, start.encoding

    def started_event(self, resumed: bool = False) -> Started:
        return Started(
            call_id=self.call_id, resume_token=self.resume_token, sample_rate=self.sample_rate,
            channels=tuple({"index": c.index, "role": c.role} for c in self.channels.values()),
            resumed=resumed, media_time=self.media_time,
        )

    def add_channel(self, spec: ChannelSpec, sample_rate: int | None = None, encoding: Encoding | None = None) -> int:
        """A joined leg (e.g. a second AudioSocket connection) becomes a new channel of this call."""
        index = max(self.channels, default=-1) + 1
        spec = ChannelSpec(index=index, role=spec.role, name=spec.name)
        # Its timeline starts where the call is now: the real time elapsed since the call began,
        # capped by the audio already received (live, both are the same; a replay faster than real
        # time keeps legs that started together aligned).
        offset = min(self.media_time, time.monotonic() - self.created)
        ch = make_channel(spec, sample_rate or self.sample_rate, self.engine.settings.vad,
                          encoding or self.encoding, offset=offset)
        ch.gaps = offset  # media clock of this channel = offset + its own samples
        self.channels[index] = ch
        self._next_emit[index] = 0
        self._held[index] = {}
        return index

    @property
    def media_time(self) -> float:
        return max((media_time(c) for c in self.channels.values()), default=0.0)

    # ---- ingest ----------------------------------------------------------------------------
    def handle(self, event: IngestEvent, channel_map: Mapping[int, int] | None = None) -> None:
        if self.finished:
            return
        if isinstance(event, AudioChunk):
            self._on_audio(event, channel_map)
        elif isinstance(event, Gap):
            targets = self._targets(event.channel, channel_map)
            for ch in targets:
                self._submit_finals(ch, gap_channel(ch, event.seconds))
            self._after_audio()
        elif isinstance(event, Dtmf):
            self._emit_alerts(self.analytics.on_dtmf(event.digit, self.media_time) if self.analytics else [])
        elif isinstance(event, MetadataUpdate):
            self.metadata.update(event.metadata)
            if event.language:
                self.language = event.language
            if self.analytics:
                self._emit_alerts(self.analytics.on_metadata(event.metadata, event.language,
                                                             media_time=self.media_time))
        elif isinstance(event, CallEnd | CallStart):
            raise TypeError("CallStart/CallEnd are handled by the engine")

    def _targets(self, channel: int | None, channel_map: Mapping[int, int] | None) -> list[ChannelState]:
        if channel is None:
            return list(self.channels.values())
        idx = channel_map.get(channel, channel) if channel_map else channel
        ch = self.channels.get(idx)
        return [ch] if ch else []

    def _on_audio(self, chunk: AudioChunk, channel_map: Mapping[int, int] | None) -> None:
        if chunk.channel is None and not channel_map:
            chans = list(self.channels.values())[: len(self.start.channels)]
            frames = split_channels(chunk.data, chans[0].encoding, len(self.start.channels))
            for i, ch in enumerate(chans):
                if i < frames.shape[1]:
                    self._submit_finals(ch, feed_channel(ch, frames[:, i]))
            seconds = frames.shape[0] / chans[0].sample_rate
        else:
            targets = self._targets(chunk.channel or 0, channel_map)
            if not targets:
                return
            mono = split_channels(chunk.data, targets[0].encoding, 1)[:, 0]
            seconds = len(mono) / targets[0].sample_rate
            for ch in targets:
                self._submit_finals(ch, feed_channel(ch, mono))
        self.engine.metrics.audio_seconds.inc(seconds)
        self._after_audio()

    def _after_audio(self) -> None:
        now = self.media_time
        tick = now - self._last_advance >= 0.1
        for ch in self.channels.values():
            if ch.activity:
                self._open_speech.pop(ch.index, None)  # that utterance closed (another may be open)
                if self.analytics:
                    for s, e in ch.activity:
                        self._emit_alerts(self.analytics.on_activity(ch.role, ch.index, s, e))
            ch.activity.clear()
            if self.analytics:
                self._report_speech(ch, tick)
            self.early.offer(ch)
            self._maybe_partial(ch)
        if self.analytics and tick:
            self._last_advance = now
            self._emit_alerts(self.analytics.advance(now))

    def _report_speech(self, ch: ChannelState, tick: bool) -> None:
        """Open VAD speech goes to the analytics live: when it opens, then on each clock tick
        (its interval follows with the activity when it closes)."""
        assert self.analytics is not None
        if ch.endpointer.speech_seconds_in_progress <= 0:
            self._open_speech.pop(ch.index, None)
            return
        start = self._open_speech.get(ch.index)
        opened = start is None
        if start is None:
            opened_at = ch.endpointer.open_start
            if opened_at is None:
                return
            # the open utterance starts at the padded audio; the speech itself starts pad_ms later
            start = min(opened_at + self.engine.settings.vad.pad_ms / 1000, media_time(ch))
            self._open_speech[ch.index] = start
        if opened or tick:
            self._emit_alerts(self.analytics.on_speech(ch.role, ch.index, start, media_time(ch)))

    # ---- ASR -------------------------------------------------------------------------------
    def request_for(self, audio: np.ndarray, offset: float, final: bool) -> DecodeRequest:
        asr = self.engine.settings.asr
        return DecodeRequest(
            audio=audio, language=self.language, prompt=self.start.prompt or self._default_prompt(),
            hotwords=self.start.hotwords, word_timestamps=asr.word_timestamps and final, offset=offset,
        )

    def _default_prompt(self) -> str:
        """``asr.prompts`` for the call's language (an English-only model: always ``en``)."""
        lang = self.language if getattr(self.engine.decoder, "multilingual", True) else "en"
        return self.engine.settings.asr.prompts.get(lang, "")

    def _submit_finals(self, ch: ChannelState, segments: list[Segment]) -> None:
        for seg in segments:
            seq = ch.segments_out
            ch.segments_out += 1
            ch.partial_speech_mark = 0.0
            job = AsrJob(
                call_id=self.call_id, channel=ch.index, request=self.request_for(seg.audio, seg.start, True),
                is_final=True, callback=self.from_worker,
                key=f"{self.call_id}:{ch.index}:{seq}",
            )
            job.segment = seg  # type: ignore[attr-defined]
            job.seq = seq  # type: ignore[attr-defined]
            job.submitted = time.monotonic()  # type: ignore[attr-defined]
            self._pending_finals += 1
            self._idle.clear()
            if self.analytics:
                self.analytics.hold(job.key, ch.role, seg.speech_start)
            if not self.early.claim(ch, seq, seg, job):
                self.submit_job(job)

    def submit_job(self, job: AsrJob) -> None:
        if self.engine.scheduler.submit(job):
            return
        # Queue full: a final is never dropped — retry shortly (the call itself is not blocked).
        self.engine.metrics.shed.labels("final_delayed").inc()
        self.loop.call_later(RETRY_DELAY_S, self.submit_job, job)

    def _maybe_partial(self, ch: ChannelState) -> None:
        asr = self.engine.settings.asr
        if not asr.partials or ch.partial_inflight:
            return
        prog = ch.endpointer.in_progress()
        if prog is None:
            return
        speech = ch.endpointer.speech_seconds_in_progress
        if speech - ch.partial_speech_mark < asr.partial_interval_s:
            return
        ch.partial_speech_mark = speech
        if self.engine.scheduler.overloaded:
            self._shed_partial()
            return
        start, audio = prog
        seq = ch.segments_out
        job = AsrJob(
            call_id=self.call_id, channel=ch.index, request=self.request_for(audio.copy(), start, False),
            is_final=False, callback=self.from_worker, key=f"{self.call_id}:{ch.index}:{seq}:p",
        )
        job.seq = seq  # type: ignore[attr-defined]
        job.start = start  # type: ignore[attr-defined]
        job.end = start + len(audio) / 16000  # type: ignore[attr-defined]
        ch.partial_inflight = True
        if not self.engine.scheduler.submit(job):
            ch.partial_inflight = False
            self._shed_partial()

    def _shed_partial(self) -> None:
        self.partials_shed += 1
        self.engine.metrics.shed.labels("partial").inc()
        if not self._overload_noticed:
            self._overload_noticed = True
            self._emit(Notice(code="partials_shed", media_time=self.media_time,
                              message="engine overloaded: partial transcripts are being skipped; "
                                      "finals continue"))

    def from_worker(self, job: AsrJob, result: DecodeResult | None, error: str | None) -> None:
        """On the ASR worker thread: score sentiment (and embed, for semantic rules) here, off
        the event loop, then hand the result to the loop."""
        extra = enrich(self.engine, self.analytics, self.language, result) if result is not None else Enrichment()
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self.loop.call_soon_threadsafe(self.on_result, job, result, error, extra)

    def on_result(self, job: AsrJob, result: DecodeResult | None, error: str | None,
                   extra: Enrichment | None = None) -> None:
        extra = extra or Enrichment()
        if job.early:
            self.early.on_result(job, result, extra)
            return
        ch = self.channels.get(job.channel)
        if ch is None:
            return
        if not job.is_final:
            ch.partial_inflight = False
            if error == "shed":
                self.partials_shed += 1
                self.engine.metrics.shed.labels("partial").inc()
            if result is None or not result.text or job.seq < self._next_emit[ch.index] or self.finished:
                return
            if job.seq != ch.segments_out:  # the utterance already ended; its final is on the way
                return
            self.publish_partial(ch, job.seq, job.start, job.end, result, extra)  # type: ignore[attr-defined]
            return
        # final
        seg: Segment = job.segment  # type: ignore[attr-defined]
        transcript: Transcript | None = None
        if result is None:
            log.warning("call %s: final %s failed: %s", self.call_id, job.key, error)
            self.dropped_finals += 1
        elif result.rejected:
            self.engine.metrics.rejected.labels(result.rejected.split(":")[0]).inc()
        elif result.text:
            transcript = Transcript(
                call_id=self.call_id, channel=ch.index, role=ch.role,
                utterance_id=ch.utterance_id(self.call_id, job.seq), is_final=True,
                start=seg.speech_start, end=seg.speech_end, text=result.text, words=result.words,
                language=result.language, avg_logprob=result.avg_logprob,
                no_speech_prob=result.no_speech_prob, emitted_at=time.time(),
                sentiment=extra.sentiment, sentiment_label=extra.label,
            )
            self._extras[transcript.utterance_id] = extra
            self.engine.metrics.final_latency.observe(time.monotonic() - job.submitted)  # type: ignore[attr-defined]
        self._held[ch.index][job.seq] = transcript
        while self._next_emit[ch.index] in self._held[ch.index]:
            seq = self._next_emit[ch.index]
            t = self._held[ch.index].pop(seq)
            self._next_emit[ch.index] += 1
            if t is not None:
                self.finals += 1
                self._role_finals[ch.index] = self._role_finals.get(ch.index, 0) + 1
                self._role_words[ch.index] = self._role_words.get(ch.index, 0) + len(t.text.split())
                self.engine.metrics.utterances.labels("final").inc()
                self._publish_transcript(t, self._extras.pop(t.utterance_id, None))
            if self.analytics:  # published (or nothing to publish): deadlines need not wait for it
                self._emit_alerts(self.analytics.release(f"{self.call_id}:{ch.index}:{seq}"))
        self._pending_finals -= 1
        if self._pending_finals <= 0:
            self._idle.set()

    # ---- output ----------------------------------------------------------------------------
    def publish_partial(self, ch: ChannelState, seq: int, start: float, end: float, result: DecodeResult,
                        extra: Enrichment) -> None:
        self.engine.metrics.utterances.labels("partial").inc()
        self._publish_transcript(Transcript(
            call_id=self.call_id, channel=ch.index, role=ch.role, utterance_id=ch.utterance_id(self.call_id, seq),
            is_final=False, start=start, end=end, text=result.text, language=result.language,
            emitted_at=time.time(), sentiment=extra.sentiment, sentiment_label=extra.label,
        ), extra)

    def _publish_transcript(self, t: Transcript, extra: Enrichment | None = None) -> None:
        self._emit(t)
        if self.analytics:
            embedding = extra.embedding if extra is not None else None
            self._emit_alerts(self.analytics.on_transcript(t, embedding=embedding))

    def _emit_alerts(self, alerts: list[Any]) -> None:
        for alert in alerts:
            alert = dataclasses.replace(alert, emitted_at=time.time())
            self.alert_count += 1
            self.engine.metrics.alerts.labels(alert.category, alert.state).inc()
            self.engine.publish_alert(self, alert)
            self._emit(alert)

    def _emit(self, event: Any) -> None:
        self.outlet.emit(event)

    # ---- end -------------------------------------------------------------------------------
    async def finish(self, reason: str = "normal") -> Summary:
        if self.summary is not None:
            return self.summary
        for ch in self.channels.values():
            self._submit_finals(ch, flush_channel(ch))
        self._after_audio()
        try:
            await asyncio.wait_for(self._idle.wait(), FINISH_TIMEOUT_S)
        except TimeoutError:
            log.error("call %s: %d finals still pending at finish", self.call_id, self._pending_finals)
            self.dropped_finals += self._pending_finals
        self.finished = True
        analytics: dict[str, Any] = {}
        end = self.media_time
        if self.analytics:
            alerts, analytics = self.analytics.finish(end)
            self._emit_alerts(alerts)
        roles: dict[str, Any] = {}
        for ch in self.channels.values():
            entry = roles.setdefault(ch.role, {"channels": [], "utterances": 0, "words": 0})
            entry["channels"].append(ch.index)
            entry["utterances"] += self._role_finals.get(ch.index, 0)
            entry["words"] += self._role_words.get(ch.index, 0)
        self.summary = Summary(
            call_id=self.call_id, duration=end, utterances=self.finals, roles=roles,
            shed_partials=self.partials_shed, dropped_finals=self.dropped_finals, alerts=self.alert_count,
            analytics=analytics, metadata=dict(self.metadata), reason=reason,
        )
        self._emit(self.summary)
        return self.summary
