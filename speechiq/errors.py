"""The small exception hierarchy every speechiq module raises from."""

from __future__ import annotations


class SpeechIQError(Exception):
    """Base class of every error speechiq raises on purpose."""


class ConfigError(SpeechIQError):
    """Invalid settings (file, environment or flags)."""


class ModelError(SpeechIQError):
    """A model could not be resolved or loaded."""


class AuthError(SpeechIQError):
    """A client failed authentication."""


class OverloadError(SpeechIQError):
    """A bounded queue is full and the work was refused (shed)."""


class ProtocolError(SpeechIQError):
    """A peer broke its wire protocol.

    ``code`` is a stable machine-readable string (``invalid_json``, ``binary_before_start`` …),
    ``close_code`` the WebSocket close code the connection ends with (``None`` = keep it open),
    and the message is a human sentence.
    """

    def __init__(self, code: str, message: str, close_code: int | None = 1008) -> None:
        super().__init__(message)
        self.code = code
        self.close_code = close_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class AudioFormatError(ProtocolError):
    """Audio bytes that cannot be decoded in the declared format."""

    def __init__(self, code: str, message: str, close_code: int | None = 1007) -> None:
        super().__init__(code, message, close_code)


class RuleError(SpeechIQError):
    """A rule pack is invalid. ``problems`` holds ``(line, message)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[int | None, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}:{line if line is not None else '?'}: {msg}" for line, msg in problems]
        super().__init__("\n".join(lines) if lines else source)
