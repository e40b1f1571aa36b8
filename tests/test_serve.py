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
        assert "anyone who can reach this port" in warning and "ssh -L 8000:127.0.0.1:8000" in warning


def test_each_session_runs_the_app_with_the_options_given():
    args = SimpleNamespace(model="demo-ddpm", outputs="/data/out dir", device="cpu", dtype=None, offload=None,
                           config=None, threads=2, allow_pickle=True, models_dir=["/models"])
    command = serve_command.app_command(args)
    assert command.startswith(f"{sys.executable} -m diffusers_tui --graphics halfblock --model demo-ddpm")
    assert "--outputs '/data/out dir'" in command and "--threads 2" in command and "--dtype" not in command
    assert command.endswith("--allow-pickle --models-dir /models")


@pytest.mark.slow
def test_a_browser_session_gets_the_app(tmp_path):
    """The real server on a free port: a websocket session starts the app and receives its screen."""
    from aiohttp import ClientSession

    port = _free_port()
    env = {**os.environ, "DIFFUSERS_TUI_THREADS": "1"}
    # Its own process group: the app each session starts goes down with the server.
    server = subprocess.Popen([sys.executable, "-m", "diffusers_tui", "--outputs", str(tmp_path), "serve",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              start_new_session=True)

    async def session() -> bytes:
        received = b""
        async with ClientSession() as client:
            for _ in range(100):  # until the server listens
                try:
                    page = await client.get(f"http://127.0.0.1:{port}/")
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            assert page.status == 200 and "textual" in (await page.text())
            async with client.ws_connect(f"http://127.0.0.1:{port}/ws?width=120&height=40") as socket_:
                deadline = time.monotonic() + 60
                while b"Generate" not in received and time.monotonic() < deadline:
                    try:
                        message = await socket_.receive(timeout=5)
                    except asyncio.TimeoutError:
                        continue
                    if isinstance(message.data, bytes):
                        received += message.data
        return received

    try:
        screen = asyncio.run(session())
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:  # a session still closing: no need to wait for it
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
    assert b"Generate" in screen and b"Prompt" in screen
    assert b"serving on http://127.0.0.1" in server.stderr.read()
