"""Early finals: decode an utterance as soon as its trailing silence is settled, not when the VAD
hangover closes it.

An utterance's audio stops changing once the silence after its last speech frame covers
``vad.pad_ms`` (the padding a final keeps): if no speech follows before ``vad.hangover_ms`` ends
it, the final is exactly that audio. So at that moment the channel submits the would-be final at
final priority (:attr:`AsrJob.early`). Its result is published right away as a partial (rules
fire provisionally about ``pad_ms`` + decode after the words end, instead of ``hangover_ms`` +
decode), and when the utterance does close with that audio the final reuses it, with no second
decode. If speech resumes first the decode was only a partial; the final is decoded as usual.
The scheduler refuses early jobs whenever finals are waiting, so under load this costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..asr.decoder import DecodeResult
from ..asr.scheduler import AsrJob
from ..vad.endpointer import Segment
from .channel import ChannelState
from .enrich import Enrichment

if TYPE_CHECKING:
    from .session import CallSession


@dataclass(eq=False)
class Early:
    """One early decode of a channel's open utterance ``seq``."""

    seq: int
    segment: Segment
    done: bool = False
    result: DecodeResult | None = None
    extra: Enrichment | None = None
    final_job: AsrJob | None = None  # the utterance closed on this audio while it was decoding

    def matches(self, seq: int, seg: Segment) -> bool:
        return (self.seq == seq and self.segment.start == seg.start
                and self.segment.audio.shape[0] == seg.audio.shape[0])


class EarlyFinals:
    """The early-final bookkeeping of one call session (event loop only)."""

    def __init__(self, session: CallSession) -> None:
        self.s = session
        self.enabled = session.engine.settings.asr.early_finals
        self._latest: dict[int, Early] = {}  # channel → its newest early decode
        self._inflight: set[int] = set()  # channels with an early decode queued or running

    def offer(self, ch: ChannelState) -> None:
        """After audio: submit the open utterance of ``ch`` once its audio is settled."""
        if not self.enabled or ch.index in self._inflight or self.s.finished:
            return
        end = ch.endpointer.settled_end
        if end is None:
            return
        last = self._latest.get(ch.index)
        if last is not None and last.seq == ch.segments_out and last.segment.end == end:
            return  # this audio was already offered (decoded, or refused)
        seg = ch.endpointer.settled()
        if seg is None:
            return
        early = Early(ch.segments_out, seg)
        self._latest[ch.index] = early
        job = AsrJob(
            call_id=self.s.call_id, channel=ch.index, request=self.s.request_for(seg.audio, seg.start, True),
            is_final=False, early=True, callback=self.s.from_worker, key=f"{self.s.call_id}:{ch.index}:{early.seq}:e",
        )
        job.extra["early"] = early
        if self.s.engine.scheduler.submit(job):
            self._inflight.add(ch.index)
            self.s.engine.metrics.early_finals.labels("submitted").inc()
        else:
            early.done = True  # refused (finals are waiting): the final decodes as usual
            self.s.engine.metrics.early_finals.labels("refused").inc()

    def claim(self, ch: ChannelState, seq: int, seg: Segment, final: AsrJob) -> bool:
        """The utterance ``seq`` closed as ``seg``: True when an early decode of exactly that audio
        serves as its final (now, or when that decode finishes); False: submit ``final``."""
        early = self._latest.get(ch.index)
        if early is None or not early.matches(seq, seg):
            return False
        if not early.done:
            early.final_job = final
            return True
        if early.result is None:
            return False
        self.s.engine.metrics.early_finals.labels("reused").inc()
        self.s.loop.call_soon(self.s.on_result, final, early.result, None, early.extra)
        return True

    def on_result(self, job: AsrJob, result: DecodeResult | None, extra: Enrichment) -> None:
        """The early decode is back (``result`` None: it failed, or was shed at shutdown)."""
        early: Early = job.extra["early"]
        early.done, early.result, early.extra = True, result, extra
        self._inflight.discard(job.channel)
        if early.final_job is not None:
            final, early.final_job = early.final_job, None
            if result is None:  # decode the final itself
                self.s.submit_job(final)
            else:
                self.s.engine.metrics.early_finals.labels("reused").inc()
                self.s.on_result(final, result, None, extra)
            return
        ch = self.s.channels.get(job.channel)
        if ch is None or result is None or not result.text or self.s.finished:
            return
        if early.seq != ch.segments_out:
            return  # the utterance ended otherwise (speech resumed, then closed): its final is on the way
        self.s.publish_partial(ch, early.seq, early.segment.speech_start, early.segment.speech_end,
                               result, extra)
