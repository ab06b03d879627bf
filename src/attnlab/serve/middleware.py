"""Pure ASGI middleware (streaming untouched): the request-body limit, the Host-header check and
a guard for the web UI's file routes. Each refuses with a JSON ``{"error": "<one line>"}``."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any


async def reply(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (on Content-Length, and on the bytes actually received)
    with 413, and API bodies that are not UTF-8 with 400."""

    def __init__(self, app: Any, max_bytes: int, utf8_prefix: str = "/v1/"):
        self.app, self.max_bytes, self.utf8_prefix = app, max_bytes, utf8_prefix

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        too_big = f"request body is larger than {self.max_bytes:,} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    n = int(value)
                except ValueError:
                    return await reply(send, 400, "Content-Length is not a number")
                if n > self.max_bytes:
                    return await reply(send, 413, too_big)
        chunks, size, more = [], 0, True
        while more:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await reply(send, 413, too_big)
            chunks.append(chunk)
            more = msg.get("more_body", False)
        body = b"".join(chunks)
        if scope["path"].startswith(self.utf8_prefix):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                return await reply(send, 400, f"request body is not valid UTF-8 (byte {exc.start})")
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls: wait for the disconnect, as the app expects

        return await self.app(scope, replay, send)


ALLOWED_HOSTS_ENV = "ATTNLAB_ALLOWED_HOSTS"  # more host names the server answers to, comma-separated; * for any
LOCAL_NAMES = ("localhost",)
WILDCARD_BINDS = ("", "0.0.0.0", "::")


def allowed_hosts_for(bind: str, environ: dict[str, str] | None = None) -> list[str] | None:
    """The host names a server bound to ``bind`` answers to: localhost, the bound name, this
    machine's name for a wildcard bind, and those in $ATTNLAB_ALLOWED_HOSTS. None (no check) when
    that variable holds ``*``. IP addresses are always accepted (see :class:`HostCheckMiddleware`)."""
    import socket

    extra = [h.strip() for h in (os.environ if environ is None else environ).get(ALLOWED_HOSTS_ENV, "").split(",")]
    if "*" in extra:
        return None
    names = [*LOCAL_NAMES, bind, *(h for h in extra if h)]
    if bind in WILDCARD_BINDS:
        names.append(socket.gethostname())
    return names


def _host_name(value: str) -> str:
    """The host part of a Host header value: ``[::1]:7860`` -> ``::1``, ``Example:80`` -> ``example``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class HostCheckMiddleware:
    """Answer only requests whose Host header names this server: a defence against DNS rebinding,
    where a page on another site points its own host name at 127.0.0.1 and so reaches the server
    from a visitor's browser. Such a request carries that other name; it gets a 400.

    IP addresses are accepted as they are (a rebinding attack needs a name it controls), as is a
    request without a Host header (HTTP/1.0: no browser sends one). Like starlette's
    ``TrustedHostMiddleware``, with a JSON error and the IP rule (that one takes no IP pattern)."""

    def __init__(self, app: Any, allowed: Iterable[str]):
        self.app = app
        self.allowed = {_host_name(h) for h in allowed if h}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        raw = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None)
        name = None if raw is None else _host_name(raw)
        if name is None or name in self.allowed or _is_ip(name):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        await reply(send, 400, f"this server does not answer to the host name {name!r} (it answers to "
                               f"{', '.join(sorted(self.allowed))} and IP addresses); to add a name, set "
                               f"{ALLOWED_HOSTS_ENV}=name before starting it")


class PathGuardMiddleware:
    """Refuse requests under ``prefix`` whose path matches ``refused`` (403), and file requests
    (``files`` matches; its group 1 is the file) whose file ``allow(path)`` does not accept (404)."""

    def __init__(self, app: Any, *, refused: str, files: str, allow: Callable[[str], bool], why: str):
        self.app, self.refused, self.files = app, re.compile(refused), re.compile(files)
        self.allow, self.why = allow, why

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = re.sub("/{2,}", "/", scope["path"])
        if self.refused.match(path):
            return await reply(send, 403, self.why)
        if (m := self.files.match(path)) and not self.allow(m.group(1)):
            return await reply(send, 404, "no such file: the web UI serves only the files it made itself")
        return await self.app(scope, receive, send)
