"""The WebSocket/HTTP front door: routes, auth, health and metrics, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from ..adapters.base import Adapter
from ..adapters.native import NativeAdapter, NativeConfig
from ..engine import Engine
from .connection import AdapterConnection
from .outbound import DEFAULT_LIMIT

log = logging.getLogger(__name__)
AdapterFactory = Callable[[Engine, Request], Adapter]


def _native(engine: Engine, request: Request) -> Adapter:
    s = engine.settings.server
    return NativeAdapter(NativeConfig(max_frame_bytes=s.max_frame_bytes, max_text_bytes=s.max_text_bytes,
                                      default_language=engine.settings.asr.language))


def platform_routes() -> dict[str, AdapterFactory]:
    """Paths → adapter factories. Telephony adapters register themselves in adapters/registry."""
    routes: dict[str, AdapterFactory] = {"/v1/calls": _native}
    with contextlib.suppress(ImportError):
        from ..adapters.registry import ROUTES

        routes.update(ROUTES)
    return routes


def _http(conn: ServerConnection, text: str, content_type: str, status: int = HTTPStatus.OK) -> Response:
    resp = conn.respond(status, text)
    del resp.headers["Content-Type"]
    resp.headers["Content-Type"] = content_type
    return resp


AUTH_FAILURE_DELAY_S = 0.5  # every refused authentication (HTTP 400/401) is answered after this
SUBPROTOCOLS = ("audio.jambonz.org", "audiostream.drachtio.org", "media")


def _select_subprotocol(conn: ServerConnection, offered: Any) -> Any:
    """Accept the platforms' subprotocols when offered, and clients that offer none."""
    return next((p for p in offered if p in SUBPROTOCOLS), None)


def split_path_key(path: str, routes: dict[str, Any]) -> tuple[str, str | None]:
    """``/v1/twilio/KEY`` → (``/v1/twilio``, KEY): for platforms that cannot send headers or a
    query string (Twilio's stream URL allows neither), the API key may be the last path segment."""
    head, _, last = path.rpartition("/")
    if head in routes and last:
        return head, last
    return path, None


def _api_key(request: Request, query: dict[str, list[str]]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("X-API-Key") or (query.get("api_key") or [None])[0]


@dataclass
class SpeechIQServer:
    engine: Engine
    routes: dict[str, AdapterFactory] = field(default_factory=platform_routes)
    outbound_limit: int = DEFAULT_LIMIT  # frames queued per connection before a slow client is closed
    server: Server | None = None
    tcp_server: asyncio.Server | None = None
    metrics_server: Server | None = None

    # ---- HTTP layer --------------------------------------------------------------------------
    def _authorized(self, request: Request, query: dict[str, list[str]], path_key: str | None = None) -> bool:
        keys = self.engine.settings.server.api_keys
        if not keys:
            return True
        given = path_key or _api_key(request, query) or ""
        return any(hmac.compare_digest(given.encode(), k.encode()) for k in keys)

    async def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        path, query = url.path.rstrip("/") or "/", parse_qs(url.query)
        path, path_key = split_path_key(path, self.routes)
        if path == "/healthz":
            return self._health(conn)
        if path == "/metrics":
            return self._metrics(conn)
        if not self._route_exists(path):
            return conn.respond(HTTPStatus.NOT_FOUND, f"no endpoint at {path}\n")
        check = getattr(self.routes.get(path), "check_upgrade", None)
        if check is not None:  # platform-specific auth (AudioHook API key + HTTP signature)
            refusal = check(self.engine, request)
            if refusal is not None:
                self.engine.metrics.auth_failures.labels(path).inc()
                if refusal[0] in (HTTPStatus.BAD_REQUEST, HTTPStatus.UNAUTHORIZED):
                    await asyncio.sleep(AUTH_FAILURE_DELAY_S)  # as the AudioHook reference server: slow guessing
                return conn.respond(refusal[0], refusal[1] + "\n")
        elif not self._authorized(request, query, path_key):
            self.engine.metrics.auth_failures.labels(path).inc()
            await asyncio.sleep(AUTH_FAILURE_DELAY_S)
            return conn.respond(HTTPStatus.UNAUTHORIZED, "missing or invalid API key\n")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return conn.respond(HTTPStatus.UPGRADE_REQUIRED, f"{path} is a WebSocket endpoint\n")
        return None

    def _metrics(self, conn: ServerConnection) -> Response:
        e = self.engine
        e.metrics.observe_fanout(e.bus, e.tap, e.webhooks)
        e.metrics.observe_scheduler(e.scheduler)
        if e.scheduler is not None:
            e.metrics.asr_queue.set(e.scheduler.depth)
        return _http(conn, e.metrics.render().decode(), "text/plain; version=0.0.4; charset=utf-8")

    async def _metrics_only(self, conn: ServerConnection, request: Request) -> Response:
        """``server.metrics_port``: /metrics and /healthz without authentication, nothing else (a
        port for the scraper that need not be exposed with the call endpoints)."""
        path = urlsplit(request.path).path.rstrip("/") or "/"
        if path == "/metrics":
            return self._metrics(conn)
        if path == "/healthz":
            return self._health(conn)
        return conn.respond(HTTPStatus.NOT_FOUND, "this port serves /metrics and /healthz only\n")

    def _route_exists(self, path: str) -> bool:
        return path in self.routes or path == "/v1/alerts" or (
            path.startswith("/v1/calls/") and path.endswith("/events"))

    def _health(self, conn: ServerConnection) -> Response:
        e = self.engine
        body = {
            "status": "ok",
            "model": getattr(e.model_info, "name", None),
            "active_calls": e.active_calls,
            "asr_queue": getattr(e.scheduler, "depth", 0),
            "overloaded": bool(getattr(e.scheduler, "overloaded", False)),
        }
        return _http(conn, json.dumps(body), "application/json")

    # ---- WebSocket layer ---------------------------------------------------------------------
    async def handler(self, ws: ServerConnection) -> None:
        url = urlsplit(ws.request.path if ws.request else "/")
        path, query = url.path.rstrip("/"), parse_qs(url.query)
        path, _ = split_path_key(path, self.routes)
        if path == "/v1/alerts":
            from ..alerts.subscribe import serve_alert_subscription

            await serve_alert_subscription(ws, self.engine.bus, query)
            return
        if path.startswith("/v1/calls/") and path.endswith("/events"):
            from ..alerts.subscribe import serve_call_tap

            await serve_call_tap(ws, self.engine.tap, path[len("/v1/calls/"):-len("/events")])
            return
        factory = self.routes[path]
        adapter = factory(self.engine, ws.request)  # type: ignore[arg-type]
        await AdapterConnection(ws, adapter, self.engine, outbound_limit=self.outbound_limit).run()

    async def start(self) -> SpeechIQServer:
        s = self.engine.settings.server
        ssl_ctx = None
        if s.tls_cert:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(s.tls_cert, s.tls_key)
        self.server = await serve(
            self.handler, s.host, s.port, process_request=self.process_request,
            # frames up to twice the limit are read and refused by the adapter with an error event;
            # beyond that websockets closes 1009 unread (counted as frame_too_large by the connection)
            max_size=max(s.max_frame_bytes, s.max_text_bytes) * 2, max_queue=64, compression=None, ssl=ssl_ctx,
            select_subprotocol=_select_subprotocol,
            ping_interval=20, ping_timeout=30,
        )
        if s.audiosocket_port is not None:
            from ..adapters.registry import audiosocket_factory
            from .tcp import start_tcp_server

            self.tcp_server = await start_tcp_server(self.engine, s.host, s.audiosocket_port, audiosocket_factory)
        if s.metrics_port is not None:
            self.metrics_server = await serve(self._refuse_ws, s.host, s.metrics_port,
                                              process_request=self._metrics_only, ssl=ssl_ctx)
        await self.engine.start_background()
        return self

    @staticmethod
    async def _refuse_ws(ws: ServerConnection) -> None:  # never reached: _metrics_only answers all
        await ws.close(1008, "metrics port")

    @property
    def metrics_port(self) -> int | None:
        if self.metrics_server is None:
            return None
        return next(iter(self.metrics_server.sockets)).getsockname()[1]

    @property
    def audiosocket_port(self) -> int | None:
        if self.tcp_server is None:
            return None
        return self.tcp_server.sockets[0].getsockname()[1]

    @property
    def port(self) -> int:
        assert self.server is not None
        return next(iter(self.server.sockets)).getsockname()[1]

    async def close(self) -> None:
        if self.tcp_server is not None:
            self.tcp_server.close()
        if self.metrics_server is not None:
            self.metrics_server.close()
        if self.server is not None:
            self.server.close(close_connections=False)
            await asyncio.sleep(0)
        await self.engine.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()


async def run_server(engine: Engine, ready: Callable[[SpeechIQServer], Any] | None = None) -> None:
    srv = await SpeechIQServer(engine).start()
    if ready:
        ready(srv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    import signal

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finalising %d calls", engine.active_calls)
    await srv.close()
