"""`diffusers-tui serve`: the same app in a browser through textual-serve, on 127.0.0.1 by default.

Each browser tab starts its own app process with the options given here. Bound to the
loopback address, it is reached through an SSH port forward. Whatever the address, a
session needs the token printed at start, a Host header naming the address served and a
websocket Origin of the page's own (commands/guarded_server.py).
"""

from __future__ import annotations

import ipaddress
import shlex
import sys

from diffusers_tui.commands.common import say
from diffusers_tui.engine import UserFacingError, shown

LOOPBACK_NAMES = {"localhost"}


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that resolves elsewhere, or every interface


def app_command(args) -> str:
    """The command line each browser session runs: this Python, the app, the options given."""
    argv = [sys.executable, "-m", "diffusers_tui", "--graphics", "halfblock"]  # xterm.js: half-blocks
    for option, value in (("--model", args.model), ("--outputs", args.outputs), ("--device", args.device),
                          ("--dtype", args.dtype), ("--offload", args.offload), ("--vae", args.vae), ("--config", args.config),
                          ("--threads", args.threads)):
        if value is not None:
            argv += [option, str(value)]
    if args.allow_pickle:
        argv.append("--allow-pickle")
    for folder in args.models_dir:
        argv += ["--models-dir", folder]
    return shlex.join(argv)


def warning_for(host: str, port: int) -> str | None:
    if is_loopback(host):
        return None
    return (f"serving on {host}:{port}, not on the loopback address: the page and its token travel over plain "
            f"HTTP, so anyone who can see this network's traffic can take the token and run models on this "
            f"machine and write into its outputs folder. Prefer the default (127.0.0.1) and forward the port over "
            f"SSH:  ssh -L {port}:127.0.0.1:{port} THIS-HOST")


def run(args) -> int:
    from diffusers_tui.commands.guarded_server import GuardedServer

    server = GuardedServer(app_command(args), host=args.host, port=args.port, connections=args.connections,
                           title="diffusers-tui")
    warning = warning_for(args.host, args.port)
    if warning:
        say(f"diffusers-tui: warning: {warning}", file=sys.stderr)
    try:
        server.serve(on_listening=lambda: say(
            f"serving on {server.url}\n  open that address (its token admits you; at most {args.connections} "
            f"browser sessions at once). From another machine: ssh -L {args.port}:127.0.0.1:{args.port} THIS-HOST, "
            f"then open the address there.", file=sys.stderr))
    except OSError as error:  # the port taken, or an address this machine does not have
        raise UserFacingError(f"cannot serve on {shown(args.host)}:{args.port}: {shown(error.strerror or error)}; "
                              "choose another with --port (or --host)") from None
    return 0
