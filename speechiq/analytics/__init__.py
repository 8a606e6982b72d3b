"""Live analytics: sentiment, talk metrics, call-level metrics and the rule engine."""
