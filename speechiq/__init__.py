"""speechiq: real-time speech analytics for contact centers."""

__version__ = "0.1.0"
