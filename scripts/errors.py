"""Errors raised by the developer tooling in ``scripts``."""

from __future__ import annotations

__all__ = ["MissingToolError", "ScriptsError", "SeedError", "StackError", "StackStartError"]


class ScriptsError(RuntimeError):
    """Base class of every error raised on purpose by ``scripts``."""


class StackError(ScriptsError):
    """The local stack cannot be configured, resolved, started or stopped."""


class MissingToolError(StackError):
    """A program the stack needs (Java, Maven) is missing or too old; the message says what to
    install."""


class StackStartError(StackError):
    """A server did not become ready; the message names it and quotes the end of its log."""


class SeedError(ScriptsError):
    """The seed tool cannot upload or replay; the message names the variable or server."""
