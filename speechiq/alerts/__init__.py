"""Alert delivery: bus, supervisor subscriptions, per-call tap, webhooks."""
