"""The command line: parse, resolve the settings, and hand over to one command's module.

Every failure ends in one line on stderr, never a traceback: exit status 2 for input
that cannot be used (a bad value, a model that will not load), 1 for a run or a save
that failed, 130 when interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

from diffusers_tui.commands.common import resolve_settings, say
from diffusers_tui.commands.parser import build_parser
from diffusers_tui.engine import UserFacingError


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = resolve_settings(args)
        return _dispatch(args, settings)
    except UserFacingError as error:
        say(f"diffusers-tui: error: {error}", file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        say("diffusers-tui: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - a bug of ours: one line, the traceback on request
        if os.environ.get("DIFFUSERS_TUI_DEBUG"):
            raise
        say(f"diffusers-tui: unexpected error: {type(error).__name__}: {error} "
              "(set DIFFUSERS_TUI_DEBUG=1 to see the traceback, and please report it)", file=sys.stderr)
        return 1


def _dispatch(args, settings) -> int:
    # Each command's module is imported only when it runs: `--help` and the app stay quick.
    if args.command is None:
        from diffusers_tui.commands import app

        return app.run(args, settings)
    if args.command in ("generate", "unet"):
        from diffusers_tui.commands import generate

        return generate.run(args, settings)
    if args.command == "compare":
        from diffusers_tui.commands import compare

        return compare.run(args, settings)
    from diffusers_tui.commands import listing

    if args.command == "models":
        return listing.models(args)
    if args.command == "schedulers":
        return listing.schedulers(args)
    if args.command == "config":
        return listing.config(settings)
    from diffusers_tui.commands import serve

    return serve.run(args)
