"""The process-wide settings a run depends on: torch's CPU threads, and the libraries' loading chatter."""

from __future__ import annotations

import os
import warnings

from diffusers_tui.engine.errors import RequestError

_quieted = False


def quiet() -> None:
    """Silence the loading chatter of diffusers and transformers (progress bars, notices)."""
    global _quieted
    if _quieted:
        return
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    diffusers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    # torchsde (diffusers' DPM++ SDE class) rounds its tree's ends, then warns at every query at them and
    # clamps: the clamp is the tools' behaviour, the warning is noise in a terminal.
    warnings.filterwarnings("ignore", message="Should have (ta|tb)", category=UserWarning)
    _quieted = True


def max_threads() -> int:
    """The most CPU threads a run may ask for: the machine's cores (more only oversubscribe them)."""
    return os.cpu_count() or 1


def check_threads(value: object, source: str = "threads") -> int:
    """`value` as a thread count in 1..cores, or RequestError naming `source` and the range."""
    from diffusers_tui.engine.request import check_whole

    try:
        return check_whole("threads", value, 1, max_threads())
    except RequestError as error:
        raise RequestError(source, f"{str(error).removeprefix('threads: ')} (this machine has "
                                   f"{max_threads()} CPU cores)") from None


def default_threads() -> int:
    """CPU threads for torch: DIFFUSERS_TUI_THREADS when it is valid, else all cores but one.

    One core is left for the UI and the OS: with every core busy in torch, one other busy
    thread made a run about 60x slower (spinning OpenMP workers waiting on each other).
    """
    configured = os.environ.get("DIFFUSERS_TUI_THREADS")
    if configured:
        try:
            return check_threads(int(configured), "DIFFUSERS_TUI_THREADS")
        except (ValueError, RequestError):
            pass  # the settings reported it (outside 1..cores, or not a number) and fell back
    return max(1, (os.cpu_count() or 2) - 1)


def configure_threads(threads: int | None = None) -> int:
    """Set torch's CPU thread count on purpose; returns the count used."""
    # Passive waiting keeps idle OpenMP threads off the cores (must precede torch's import).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    count = check_threads(threads) if threads is not None else default_threads()
    torch.set_num_threads(count)
    return count
