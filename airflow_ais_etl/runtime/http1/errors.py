"""The one error the HTTP/1.1 parser raises, whatever the malformed input."""

from __future__ import annotations


class ParseError(ValueError):
    """The bytes are not a message this parser accepts.

    :param status: the answer a server gives for it (400, 431 for size limits, 501, 505); a client
        ignores it
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
