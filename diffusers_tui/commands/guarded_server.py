"""textual-serve's server, guarded: a secret token, the Host and Origin checked, and a cap on sessions.

Each browser session is an app process that can run models and write files, so the
server admits only the person it printed the address for:
- the page needs `?token=...` (printed at start, as Jupyter does) and the websocket
  carries the same token in its path, so a page elsewhere cannot guess its way in;
- the Host header must name the address served (a DNS-rebinding page sends its own name);
- a websocket's Origin must be this server's own address (any other site's page is refused);
- at most `connections` sessions run at once.
Every refusal is logged with its reason; the server stays up. Anyone who can reach the
port (any web page the user opens, through the browser) chooses the request's path and
headers, so every log line is one line passed through `shown`, tracebacks included, and a
connection that has not sent a whole request within HEADER_TIMEOUT seconds is closed.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from textual_serve.server import Server

from diffusers_tui.engine import shown

log = logging.getLogger("diffusers-tui.serve")
LOOPBACK_ALIASES = ("127.0.0.1", "localhost", "[::1]")
#: Seconds a connection may take to send its request line and headers (aiohttp closes idle
#: connections after its keep-alive time, counted from the connection's start).
HEADER_TIMEOUT = 15.0
#: A log line's length: a request path can be 8 KB.
LOG_LINE_LIMIT = 300


class OneLineFormatter(logging.Formatter):
    """Each record as one line that cannot drive a terminal: a traceback becomes its last line."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record whose arguments do not fit its format
            message = repr(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message}: {type(error).__name__}: {error}"
        return f"{record.levelname.lower()}: {shown(message, LOG_LINE_LIMIT)}"


def allowed_hosts(host: str, port: int) -> set[str]:
    """The `host:port` values a request's Host header (and a websocket's Origin) may name."""
    names = {host}
    if host in ("127.0.0.1", "localhost", "::1"):
        names.update(LOOPBACK_ALIASES)
    elif host in ("0.0.0.0", "::", ""):
        # Every interface: this machine's own names and addresses (a rebinding page uses its own name).
        names.update(LOOPBACK_ALIASES)
        names.update({socket.gethostname(), socket.getfqdn()})
        try:
            names.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
        except OSError:
            pass
    hosts = set()
    for name in names:
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"  # an IPv6 literal, as a Host header writes it
        hosts.add(f"{name.lower()}:{port}")
        if port == 80:
            hosts.add(name.lower())
    return hosts


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


#: textual-serve's page asks Google's font service for Roboto Mono, which it also ships in its static files.
_REMOTE_FONT = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>", re.S)


def own_origin_only(page: str, static_url: str) -> str:
    """The page with its font from the server's own static files instead of Google's (a GPU box may have no
    internet, and the request would tell Google who opened the app), and no favicon request."""
    static = static_url.rstrip("/") + "/"
    faces = "".join(
        f'@font-face {{ font-family: "Roboto Mono"; font-style: {style}; font-weight: 100 700; '
        f'src: url("{static}fonts/{file}") format("truetype"); }} '
        for style, file in (("normal", "RobotoMono-VariableFont_wght.ttf"),
                            ("italic", "RobotoMono-Italic-VariableFont_wght.ttf")))
    return _REMOTE_FONT.sub(lambda match: f'<style>{faces}</style>\n    <link rel="icon" href="data:,">', page)


class GuardedServer(Server):
    """A textual-serve Server that admits only requests carrying its token, Host and Origin."""

    def __init__(self, command: str, host: str, port: int, connections: int, token: str | None = None, **kwargs):
        super().__init__(command, host=host, port=port, **kwargs)
        self.token = token or secrets.token_urlsafe(24)
        self.connections = connections
        self.open_sessions = 0
        self.hosts = allowed_hosts(host, port)

    def initialize_logging(self) -> None:
        # textual-serve's RichHandler writes a request's decoded path as it is, escape sequences
        # and all, and a malformed request as a 50-line traceback with its raw bytes.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter())
        logging.basicConfig(level=logging.DEBUG if self.debug else logging.INFO, handlers=[handler], force=True)

    def serve(self, debug: bool = False, on_listening: Callable[[], None] | None = None) -> None:
        """textual-serve's serve(), with this server's logging and a time limit on a request's headers.

        `on_listening` runs once the socket listens: an address printed before then can be refused when opened.
        """
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for stop in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(stop, self.request_exit)
            except NotImplementedError:
                pass
        web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop,
                    keepalive_timeout=HEADER_TIMEOUT, print=lambda *_: on_listening and on_listening())

    @property
    def url(self) -> str:
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown_host}:{self.port}/?token={self.token}"

    def _refuse(self, request: web.Request, status: int, reason: str) -> web.Response:
        peer = request.remote or "?"
        log.warning("refused %s %s from %s: %s", request.method, request.path, peer, reason)
        return web.Response(status=status, text=f"diffusers-tui: {reason}\n")

    def _host_ok(self, request: web.Request) -> bool:
        host = (request.headers.get("Host") or "").lower()
        if host in self.hosts:
            return True
        # Bound to every interface, any IP literal is this machine's: only names can be rebound.
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        return self.host in ("0.0.0.0", "::", "") and host.endswith(f":{self.port}") and _is_ip_literal(name)

    def _token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> Any:
        if not self._host_ok(request):
            return self._refuse(request, 421, f"Host {request.headers.get('Host')!r} is not the address served")
        if request.path.startswith("/static/") or request.path == "/favicon.ico":
            return await handler(request)  # the page's scripts and fonts: public files of textual-serve
        if request.path.startswith("/ws/"):
            return await handler(request)  # checked in handle_websocket (token in the path, Origin, cap)
        if not self._token_ok(request.query.get("token")):
            return self._refuse(request, 403, "a missing or wrong token: open the address printed at start")
        return await handler(request)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        app.router.add_get("/ws/{token}", self.handle_guarded_websocket)
        app.router.add_get("/favicon.ico", lambda request: web.Response(status=204))
        return app

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        # textual-serve's own /ws route carries no token: closed.
        return self._refuse(request, 403, "a websocket without the token")

    async def handle_guarded_websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._token_ok(request.match_info.get("token")):
            return self._refuse(request, 403, "a websocket with a missing or wrong token")
        origin = request.headers.get("Origin")
        parts = urlsplit(origin or "")
        # The page's own address: one of the served ones, or the Host it was reached by (checked above).
        own = self.hosts | {request.headers.get("Host", "").lower()}
        if parts.scheme not in ("http", "https") or parts.netloc.lower() not in own:
            return self._refuse(request, 403, f"a websocket from Origin {origin!r}, not from this server's page")
        if self.open_sessions >= self.connections:
            return self._refuse(request, 503, f"already {self.open_sessions} browser sessions (the connections "
                                              "setting); close one, or raise it with --connections")
        self.open_sessions += 1
        log.info("session opened from %s (%d of %d)", request.remote, self.open_sessions, self.connections)
        try:
            return await Server.handle_websocket(self, request)
        finally:
            self.open_sessions -= 1
            log.info("session closed (%d of %d open)", self.open_sessions, self.connections)

    async def handle_index(self, request: web.Request):
        response = await super().handle_index(request)
        if isinstance(response, web.Response) and response.text:
            # The page's websocket address gets the token in its path: the page appends "?width=..." itself.
            plain = f'data-session-websocket-url="{self._websocket_base(request)}"'
            text = response.text.replace(plain, plain[:-1] + f'/{self.token}"')
            response.text = own_origin_only(text, request.app.router["static"].url_for(filename="/").path)
        return response

    def _websocket_base(self, request: web.Request) -> str:
        return "ws:" + f"{self.public_url}{request.app.router['websocket'].url_for()}".split(":", 1)[1]

