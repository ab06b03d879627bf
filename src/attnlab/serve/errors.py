"""The error a request can cause: an HTTP status and one line that says what is wrong."""

from __future__ import annotations


class ApiError(Exception):
    """Turned into ``{"error": message}`` with ``status`` by the app's exception handler."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message
