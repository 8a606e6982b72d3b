"""Prometheus metrics of one engine (own registry, so several engines can live in one process)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class EngineMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.connections = Counter("speechiq_connections_total", "Connections accepted", ["platform"], registry=r)
        self.calls_started = Counter("speechiq_calls_started_total", "Calls started", ["platform"], registry=r)
        self.calls_resumed = Counter("speechiq_calls_resumed_total", "Calls resumed after a drop", registry=r)
        self.calls_ended = Counter("speechiq_calls_ended_total", "Calls finalised", ["reason"], registry=r)
        self.calls_refused = Counter("speechiq_calls_refused_total", "Calls refused", ["reason"], registry=r)
        self.active_calls = Gauge("speechiq_active_calls", "Calls in progress", registry=r)
        self.protocol_errors = Counter(
            "speechiq_protocol_errors_total", "Bad input from clients", ["platform", "code"], registry=r)
        self.auth_failures = Counter("speechiq_auth_failures_total", "Refused authentications",
                                     ["platform"], registry=r)
        self.audio_seconds = Counter("speechiq_audio_seconds_total", "Seconds of call audio received",
                                     registry=r)
        self.utterances = Counter("speechiq_utterances_total", "Utterances transcribed", ["kind"], registry=r)
        self.rejected = Counter("speechiq_asr_rejected_total", "Utterances rejected by hallucination guards",
                                ["reason"], registry=r)
        self.shed = Counter("speechiq_shed_total", "Work shed under load", ["kind"], registry=r)
        self.early_finals = Counter(
            "speechiq_early_finals_total", "Utterances decoded once their trailing silence settled, before "
            "the VAD hangover: submitted, refused (finals were waiting), reused as the final", ["outcome"],
            registry=r)
        self.final_latency = Histogram(
            "speechiq_final_latency_seconds", "Utterance end (VAD endpoint) to final transcript, wall clock",
            buckets=LATENCY_BUCKETS, registry=r)
        self.asr_queue = Gauge("speechiq_asr_queue_depth", "Utterances waiting for ASR", registry=r)
        self.alerts = Counter("speechiq_alerts_total", "Alerts emitted", ["category", "state"], registry=r)
        self.events_dropped = Counter("speechiq_client_events_dropped_total",
                                      "Events dropped for slow clients", ["kind"], registry=r)
        self.adapter_events = Counter(
            "speechiq_adapter_events_total", "Notable wire events per platform that are not errors (late or "
            "duplicate frames, loss gaps, sequence gaps, ignored messages, client error reports)",
            ["platform", "kind"], registry=r)

        self.subscribers = Gauge("speechiq_alert_subscribers", "Open alert/tap subscriptions", ["kind"], registry=r)
        self.bus_dropped = Gauge("speechiq_subscriber_dropped_total",
                                 "Alerts/events dropped for slow subscribers (running total)", ["kind"], registry=r)
        self.webhooks = Gauge("speechiq_webhooks", "Webhook deliveries (running totals) and queue", ["state"],
                              registry=r)
        self.scheduler = Gauge(
            "speechiq_asr_scheduler", "ASR scheduler (running totals and recent queue waits): batches, "
            "mean_batch, decoded_audio_s, busy_s, queue_wait_p50_s, queue_wait_p95_s, depth", ["stat"], registry=r)

    def observe_fanout(self, bus: Any, tap: Any, webhooks: Any) -> None:
        """Copy the fan-out components' counters into the registry (called on each scrape)."""
        for kind, hub in (("alerts", bus), ("tap", tap)):
            if hub is not None:
                st = hub.stats()
                self.subscribers.labels(kind).set(st.get("subscribers", 0))
                self.bus_dropped.labels(kind).set(st.get("dropped", 0))
        if webhooks is not None:
            for state, value in webhooks.stats().items():
                if isinstance(value, (int, float)):
                    self.webhooks.labels(state).set(value)

    def observe_scheduler(self, scheduler: Any) -> None:
        """Copy the ASR scheduler's numeric stats into the registry (called on each scrape)."""
        if scheduler is None:
            return
        for stat, value in scheduler.stats().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.scheduler.labels(stat).set(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
