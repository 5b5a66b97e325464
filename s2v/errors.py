"""Exceptions shared by the whole toolkit."""


class S2VError(Exception):
    """Base class: an error with a one-line message meant for the user."""


class StoreError(S2VError):
    """A store is missing, incomplete, of another format version, or damaged."""


class ParseError(S2VError):
    """A raw file cannot be used: ``NAME: line L: what is wrong``."""

    def __init__(self, name: str, reason: str, line: int | None = None) -> None:
        self.name = name
        self.reason = reason
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{name}: {where}{reason}")
