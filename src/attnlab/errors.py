"""The one error type a user can cause, and how the CLI reports it.

Library code raises :class:`UserError` for mistakes a person can fix (a missing file, an unknown
model name, a bad hyper-parameter). The CLI catches it at the edge and prints one line:
``error: <what> (<where>). <how to fix>`` and exits with code 2. Everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix. ``what`` says what is wrong, ``where`` names the file, flag or
    value involved, ``fix`` says what to do instead."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        line = self.what.rstrip(".")
        if self.where:
            line += f" ({self.where})"
        line += "."
        if self.fix:
            fix = self.fix.rstrip(".")
            line += " " + fix[:1].upper() + fix[1:] + "."
        return " ".join(line.split())
