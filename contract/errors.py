"""The one error of the contract: a configuration value that cannot be used."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """An environment variable is missing, malformed or contradicts another.

    ``variable`` is the variable's name and ``problem`` what is wrong with it; the message is
    ``"<variable>: <problem>"`` so that a log line or an exit message names it.
    """

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem
