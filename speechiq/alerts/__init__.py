"""Alert delivery: bus, supervisor subscriptions, per-call tap, webhooks."""

from .bus import AlertBus, AlertFilter, EventTap, Subscription, SubscriptionClosed

__all__ = ["AlertBus", "AlertFilter", "EventTap", "Subscription", "SubscriptionClosed"]
