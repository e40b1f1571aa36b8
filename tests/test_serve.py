"""`diffusers-tui serve`: the app in a browser session, on the loopback address unless told otherwise."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from diffusers_tui.commands import serve as serve_command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                          ("0.0.0.0", True), ("192.168.1.20", True), ("gpu-box.example", True)])
def test_only_loopback_addresses_serve_without_a_warning(host, warned):
    warning = serve_command.warning_for(host, 8000)
    assert (warning is not None) == warned
    if warned:
        assert "take the token" in warning and "ssh -L 8000:127.0.0.1:8000" in warning


def test_each_session_runs_the_app_with_the_options_given():
    args = SimpleNamespace(model="demo-ddpm", outputs="/data/out dir", device="cpu", dtype=None, offload=None,
                           vae="tiled", config=None, threads=2, allow_pickle=True, models_dir=["/models"])
    command = serve_command.app_command(args)
    assert command.startswith(f"{sys.executable} -m diffusers_tui --graphics halfblock --model demo-ddpm")
    assert "--outputs '/data/out dir'" in command and "--threads 2" in command and "--dtype" not in command
    assert "--vae tiled" in command
    assert command.endswith("--allow-pickle --models-dir /models")


def _start_server(tmp_path, *extra: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = {**os.environ, "DIFFUSERS_TUI_THREADS": "1"}
    # Its own process group: the app each session starts goes down with the server.
    server = subprocess.Popen([sys.executable, "-m", "diffusers_tui", "--outputs", str(tmp_path), "serve",
                               "--port", str(port), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, start_new_session=True)
    return server, port


def _stop(server: subprocess.Popen) -> str:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:  # a session still closing: no need to wait for it
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
    return server.stderr.read().decode(errors="replace") + server.stdout.read().decode(errors="replace")


async def _token_once_up(client, server: subprocess.Popen, port: int) -> str:
    """Wait until the server answers, then read the token from the address it printed."""
    for _ in range(200):
        try:
            await client.get(f"http://127.0.0.1:{port}/static/js/textual.js")
            break
        except OSError:
            await asyncio.sleep(0.1)
    line = server.stderr.readline().decode()
    while "token=" not in line:
        line = server.stderr.readline().decode()
    assert line.startswith(f"serving on http://127.0.0.1:{port}/?token="), line
    return line.split("token=", 1)[1].split()[0]


async def _read_until_app(socket_) -> bytes:
    received = b""
    deadline = time.monotonic() + 60
    while b"Generate" not in received and time.monotonic() < deadline:
        try:
            message = await socket_.receive(timeout=5)
        except asyncio.TimeoutError:
            continue
        if isinstance(message.data, bytes):
            received += message.data
    return received


def test_the_page_asks_nothing_of_any_other_host():
    """textual-serve's page links Google's font service; the served page takes the font from its own files."""
    import re
    from pathlib import Path

    import textual_serve

    from diffusers_tui.commands.guarded_server import own_origin_only

    package = Path(textual_serve.__file__).parent
    page = own_origin_only((package / "templates" / "app_index.html").read_text(), "/static/")
    assert "googleapis" not in page
    urls = set(re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(["']?([^"')]+)""", page))
    urls = {a or b for a, b in urls}
    assert urls and all(url.startswith(("/static/", "{{", "data:")) for url in urls), urls
    for font in re.findall(r'url\("/static/([^"]+)"\)', page):
        assert (package / "static" / font).is_file(), font


@pytest.mark.slow
def test_the_address_is_printed_once_the_server_answers_it(tmp_path):
    """A person opens the printed address at once: it must already be listening (aiohttp starts the app first)."""
    server, port = _start_server(tmp_path)
    try:
        line = server.stderr.readline().decode()
        while line and "token=" not in line:
            line = server.stderr.readline().decode()
        assert "token=" in line, "the server printed no address"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:  # refused if not listening
            connection.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            assert connection.recv(64).startswith(b"HTTP/1.1 403")
    finally:
        _stop(server)


@pytest.mark.slow
def test_a_browser_session_gets_the_app(tmp_path):
    """The real server on a free port: the page with its token, then a websocket session gets the app's screen."""
    from aiohttp import ClientSession

    server, port = _start_server(tmp_path)
    base = f"http://127.0.0.1:{port}"

    async def session() -> bytes:
        async with ClientSession() as client:
            token = await _token_once_up(client, server, port)
            page = await client.get(f"{base}/?token={token}")
            html = await page.text()
            assert page.status == 200 and "textual" in html
            assert f'data-session-websocket-url="ws://127.0.0.1:{port}/ws/{token}"' in html
            assert "googleapis" not in html
            font = await client.get(f"{base}/static/fonts/RobotoMono-VariableFont_wght.ttf")
            icon = await client.get(f"{base}/favicon.ico")
            assert (font.status, icon.status) == (200, 204)
            async with client.ws_connect(f"{base}/ws/{token}?width=120&height=40",
                                         headers={"Origin": base}) as socket_:
                return await _read_until_app(socket_)

    try:
        screen = asyncio.run(session())
    finally:
        log = _stop(server)
    assert b"Generate" in screen and b"Prompt" in screen
    assert "session opened" in log and "refused" not in log


@pytest.mark.slow
def test_forged_origins_wrong_hosts_bad_tokens_and_one_session_too_many_are_refused(tmp_path):
    """Each refusal is answered and logged with its reason, and the server stays up for the real user."""
    from aiohttp import ClientSession, WSServerHandshakeError

    server, port = _start_server(tmp_path, "--connections", "1")
    base = f"http://127.0.0.1:{port}"

    async def probe() -> dict[str, int]:
        statuses: dict[str, int] = {}
        async with ClientSession() as client:
            token = await _token_once_up(client, server, port)
            statuses["page without token"] = (await client.get(f"{base}/")).status
            statuses["page with a wrong token"] = (await client.get(f"{base}/?token=x{token}")).status
            statuses["page for another Host"] = (await client.get(f"{base}/?token={token}",
                                                                  headers={"Host": f"evil.example:{port}"})).status

            async def websocket_status(path: str, origin: str | None) -> int:
                headers = {"Origin": origin} if origin else {}
                try:
                    async with client.ws_connect(f"{base}{path}?width=80&height=24", headers=headers):
                        return 101
                except WSServerHandshakeError as error:
                    return error.status

            statuses["websocket from another site"] = await websocket_status(f"/ws/{token}", "http://evil.example")
            statuses["websocket without Origin"] = await websocket_status(f"/ws/{token}", None)
            statuses["websocket with a wrong token"] = await websocket_status("/ws/nope", base)
            statuses["websocket without token"] = await websocket_status("/ws", base)
            async with client.ws_connect(f"{base}/ws/{token}?width=120&height=40", headers={"Origin": base}) as first:
                screen = await _read_until_app(first)
                statuses["one session too many"] = await websocket_status(f"/ws/{token}", base)
            statuses["the page, still up"] = (await client.get(f"{base}/?token={token}")).status
            assert b"Generate" in screen
        return statuses

    try:
        statuses = asyncio.run(probe())
    finally:
        log = _stop(server)
    assert statuses == {"page without token": 403, "page with a wrong token": 403, "page for another Host": 421,
                        "websocket from another site": 403, "websocket without Origin": 403,
                        "websocket with a wrong token": 403, "websocket without token": 403,
                        "one session too many": 503, "the page, still up": 200}
    assert log.count("refused") >= 8, log
    assert "Host 'evil.example" in log and "Origin 'http://evil.example'" in log and "sessions" in log


def test_log_lines_cannot_drive_the_terminal_and_tracebacks_are_one_line():
    import logging

    from diffusers_tui.commands.guarded_server import OneLineFormatter

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "refused GET %s", ("/\x1b[2J\x1b]0;pwned\x07",), None)
    assert OneLineFormatter().format(record) == r"warning: refused GET /\x1b[2J\x1b]0;pwned\x07"
    try:
        raise ValueError("bad\nheader \x1b[31m")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, __file__, 1, "Error handling request", (), sys.exc_info())
    line = OneLineFormatter().format(failed)
    assert line == r"error: Error handling request: ValueError: bad\x0aheader \x1b[31m"


def _raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(request)
        return connection.recv(100)


@pytest.mark.slow
def test_hostile_requests_write_nothing_that_drives_the_terminal_and_slow_headers_are_cut_off(tmp_path):
    """Any page the user opens can make the browser send these: no token is needed to reach the log."""
    from diffusers_tui.commands.guarded_server import HEADER_TIMEOUT

    server, port = _start_server(tmp_path)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        host = f"Host: 127.0.0.1:{port}\r\n".encode()
        slow = socket.create_connection(("127.0.0.1", port))
        slow.sendall(b"GET / HTTP/1.1\r\n")  # and then one header byte at a time, never the end
        escape_path = _raw_request(port, b"GET /%1b[2J%1b]0;pwned%07?token=wrong HTTP/1.1\r\n" + host + b"\r\n")
        malformed = _raw_request(port, b"GET / HTTP/1.1\r\n" + host + b"X-A: a\x01\x1b[2Jb\r\n\r\n")
        started, closed = time.monotonic(), False
        slow.settimeout(1)
        while time.monotonic() - started < HEADER_TIMEOUT + 10 and not closed:
            try:
                slow.sendall(b"X")
                closed = slow.recv(100) == b""
            except socket.timeout:
                continue
            except OSError:
                closed = True
        slow.close()
    finally:
        log = _stop(server)
    assert escape_path.startswith(b"HTTP/1.1 403") and malformed.startswith(b"HTTP/1.0 400")
    assert "\x1b" not in log and "\x07" not in log and r"\x1b[2J\x1b]0;pwned\x07" in log
    assert "Traceback" not in log and "BadHttpMessage" in log
    assert closed, "a connection that never finished its headers was kept open"
