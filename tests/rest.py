"""What every REST test asserts of an error answer: the status, a body of one key, one line."""

from __future__ import annotations


def rest_error(r, status: int, *needles: str) -> str:
    """The one-line ``error`` of response ``r``, after checking its status and that it holds ``needles``."""
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"]
    for n in needles:
        assert n in body["error"], (n, body["error"])
    return body["error"]
