"""What a closed-vocabulary model (the demo) knows, and the note for a prompt with words outside it.

Pure text over a ModelSummary's plain values: the app calls it on its UI thread as the
prompt is sent, the commands before a run.
"""

from __future__ import annotations

import re


def describe(summary) -> str:
    """The words and sentence a model knows, in one line ("" for an open vocabulary)."""
    if not summary.vocabulary:
        return ""
    groups = "; ".join(f"{name} {', '.join(words)}" for name, words in summary.vocabulary if name != "other words")
    return f"{summary.name} knows {groups}; and the sentence {summary.prompt_pattern!r}"


def unknown_words(prompt: str, summary) -> list[str]:
    """The words of `prompt` the model never learned, in order, each once."""
    known = {word for _, words in summary.vocabulary for word in words}
    # A1111 syntax is not words: <lora:...> tags and BREAK.
    words = re.findall(r"[a-z]+", re.sub(r"<[^>]*>|\bBREAK\b", " ", prompt).lower())
    return list(dict.fromkeys(word for word in words if word not in known))


def prompt_note(prompt: str, summary) -> str | None:
    """A note naming the prompt's unknown words and what the model knows; None when all are known."""
    if summary is None or not summary.vocabulary:
        return None
    unknown = unknown_words(prompt, summary)
    if not unknown:
        return None
    listed = ", ".join(repr(word) for word in unknown)
    plural = "s" if len(unknown) > 1 else ""
    return (f"{summary.name} does not know the word{plural} {listed}: it draws what it can of the rest. "
            f"{describe(summary)}")


def of_model(loaded) -> dict:
    """The built-in text-to-image demo's closed vocabulary, for the summary; nothing for other models."""
    if loaded.source.kind != "demo" or loaded.mode == "unet":
        return {}
    from diffusers_tui.engine.demo import shapes

    return {"vocabulary": (("colours", shapes.COLOURS), ("shapes", shapes.SHAPES),
                           ("other words", ("a", "on", "background"))),
            "prompt_pattern": "a <colour> <shape> on a <colour> background"}
