"""`diffusers-tui serve`: the same app in a browser through textual-serve, on 127.0.0.1 by default.

Each browser tab starts its own app process with the options given here. Bound to the
loopback address, it is reached through an SSH port forward; bound anywhere else, anyone
who can reach the port can run models on this machine and write into its outputs folder.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys

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
                          ("--dtype", args.dtype), ("--offload", args.offload), ("--config", args.config),
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
    return (f"serving on {host}:{port}, not on the loopback address: anyone who can reach this port can run "
            f"models on this machine and write into its outputs folder. Prefer the default (127.0.0.1) "
            f"and forward the port over SSH:  ssh -L {port}:127.0.0.1:{port} THIS-HOST")


def run(args) -> int:
    from textual_serve.server import Server

    warning = warning_for(args.host, args.port)
    if warning:
        print(f"diffusers-tui: warning: {warning}", file=sys.stderr)
    else:
        print(f"serving on http://{args.host}:{args.port}  (from another machine: "
              f"ssh -L {args.port}:127.0.0.1:{args.port} THIS-HOST, then open that address there)", file=sys.stderr)
    Server(app_command(args), host=args.host, port=args.port, title="diffusers-tui").serve()
    return 0
