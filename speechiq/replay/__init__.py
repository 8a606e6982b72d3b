"""Replay clients: stream a WAV to a running engine over our protocol or as a telephony platform."""
