"""The App's key bindings: every key, its binding id (for [keys] in config.toml), and its tooltip."""

from __future__ import annotations

import functools

from textual.binding import Binding

APP_BINDINGS = [
    Binding("ctrl+g,ctrl+enter", "generate", "Generate", id="generate",
            tooltip="Generate with the current settings (cancels a run that is going)"),
    # F4-F6 are priority keys: the prompt (a TextArea) would otherwise take F5 and F6
    # for selecting a word or a line, and ctrl+k for deleting to the end of the line.
    Binding("f6", "compare", "Compare", id="compare", priority=True,
            tooltip="Race the marked schedulers (space marks them) on this prompt and seed, side by side"),
    Binding("escape", "cancel", "Cancel", id="cancel", tooltip="Stop the running generation within one step"),
    Binding("ctrl+s", "save", "Save", id="save", tooltip="Save the image (and every step, if ticked) to outputs/"),
    Binding("ctrl+o", "save_to", "Save to", id="save.to", show=False,
            tooltip="Save into another folder (and keep using it): for when outputs/ cannot be written"),
    Binding("f3", "scheduler(1)", "Next sched", id="scheduler.next", tooltip="Next available scheduler"),
    Binding("f2", "scheduler(-1)", "Prev sched", id="scheduler.previous", tooltip="Previous available scheduler"),
    Binding("f5", "steps(1)", "Steps+", id="steps.up", tooltip="One more step", priority=True),
    Binding("f4", "steps(-1)", "Steps-", id="steps.down", tooltip="One step fewer", priority=True),
    Binding("ctrl+t", "use_as_init", "As init", id="init.take", priority=True, show=False,
            tooltip="img2img: the current result (saved first) becomes the next run's init image"),
    Binding("ctrl+b", "batch_image", "Batch image", id="batch.image", priority=True, show=False,
            tooltip="After a batch: its images one at a time (then the whole grid again), scrubbable alike"),
    Binding("ctrl+r", "new_seed", "New seed", id="seed.new", tooltip="Pick a new random seed"),
    Binding("ctrl+l", "lock_seed", "Lock seed", id="seed.lock", tooltip="Keep the seed between runs (or not)"),
    Binding("ctrl+x", "toggle_preview", "x0/noisy", id="preview.toggle",
            tooltip="Preview the denoised estimate (x0) or the noisy sample"),
    Binding("ctrl+e", "focus_prompt", "Prompt", id="focus.prompt", tooltip="Move focus to the prompt"),
    Binding("ctrl+f", "focus_pane", "Pane", id="focus.pane", show=False,
            tooltip="Move focus to the picture: left/right or [ ] then walk through the steps"),
    Binding("f7", "history", "History", id="history", priority=True,
            tooltip="Everything saved in outputs/, newest first: see it, and load its recipe with enter"),
    Binding("f8", "export", "Export", id="export", priority=True, show=False,
            tooltip="Export the run's steps as an animated WebP and a contact sheet (saves the run first)"),
    Binding("f9", "save_settings", "Save settings", id="settings.save", priority=True, show=False,
            tooltip="Keep the current model, scheduler, steps, guidance, size and preview settings as defaults"),
    Binding("f1,question_mark", "help", "Help", id="help", tooltip="Show every key"),
    Binding("ctrl+q", "quit", "Quit", id="quit", tooltip="Quit (a running generation stops first)", priority=True),
]


#: The comparison screen's keys (here, so the app lists every key without importing the screen).
COMPARE_BINDINGS = [
    Binding("escape", "close", "Cancel/close", id="compare.close",
            tooltip="Cancel the comparison while it runs; afterwards go back to the main screen"),
    Binding("right,right_square_bracket", "scrub(1)", "Step >", id="compare.next",
            tooltip="After the race: every pane one step on, in sync"),
    Binding("left,left_square_bracket", "scrub(-1)", "Step <", id="compare.previous",
            tooltip="After the race: every pane one step back, in sync"),
    Binding("n", "toggle_alignment", "Align", id="compare.align",
            tooltip="Scrub by step index or align the panes by noise level (sigma)"),
    Binding("b", "blink", "Blink", id="compare.blink",
            tooltip="Flip the focused pane between its run and the partner run (the reference, or one set with p)"),
    Binding("p", "set_partner", "Partner", id="compare.partner", show=False,
            tooltip="Make the focused pane's run the blink partner"),
    Binding("f,enter", "toggle_single", "Full size", id="compare.full",
            tooltip="Open the focused pane's run full size (again: back to the grid)"),
    Binding("m", "next_metric", "Metric", id="compare.metric", show=False,
            tooltip="After the race, with a reference: plot the next metric against model calls "
                    "(RMSE, latent L2, 1 - SSIM)"),
    Binding("tab", "focus_next", "Next pane", id="compare.focus", show=False,
            tooltip="Move focus to the next pane"),
    Binding("ctrl+s", "save", "Save", id="compare.save",
            tooltip="Save the grid PNG, every image with its recipe, and the table (CSV, JSON) to outputs/"),
]

#: The history screen's keys.
HISTORY_BINDINGS = [
    Binding("enter,l", "load", "Load recipe", id="history.load",
            tooltip="Put this picture's whole recipe into the controls (model, scheduler, steps, seed...)"),
    Binding("v", "view_study", "View study", id="history.study",
            tooltip="A saved comparison: its grid and its figures (convergence, schedules, trajectories)"),
    Binding("escape,f7", "close", "Close", id="history.close", tooltip="Back to the main screen"),
]


STUDY_BINDINGS = [
    Binding("escape,v", "close", "Back", id="study.close", tooltip="Back to the history"),
    Binding("m", "next_metric", "Metric", id="study.metric",
            tooltip="Plot the next metric against model calls (RMSE, latent L2, 1 - SSIM)"),
]


_MODIFIERS = {"ctrl", "shift", "alt", "meta", "super", "hyper"}


@functools.cache
def _key_names() -> frozenset[str]:
    from textual.keys import Keys, _character_to_key

    names = {key.value.rsplit("+", 1)[-1] for key in Keys}
    names |= {_character_to_key(chr(code)) for code in range(32, 127)}
    names |= {chr(code) for code in range(33, 127)}
    return frozenset(names)


def unknown_keys(keys: str) -> list[str]:
    """The keys in a `[keys]` value ("ctrl+g,f10") that Textual would never match: typos, in short."""
    known = _key_names()
    unknown = []
    for key in keys.split(","):
        *modifiers, name = key.strip().split("+") if key.strip() else [""]
        if not name or name not in known or not set(modifiers) <= _MODIFIERS:
            unknown.append(key.strip())
    return unknown
