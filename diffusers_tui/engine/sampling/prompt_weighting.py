"""A1111 prompt syntax, applied through compel: emphasis `(word:1.2)`, `(word)`, `[word]`, and `BREAK`.

A1111's emphasis is parsed as A1111 parses it (its `parse_prompt_attention`: round brackets
multiply by 1.1, square ones divide by 1.1, `(text:w)` sets w, `\\(` is a literal bracket) and
written in compel's syntax: `(text)w` per weighted run, and `("chunk", "chunk").and()` for BREAK,
which, like A1111's BREAK, encodes each chunk on its own and joins them. compel then builds the
embeddings for CLIP text encoders (SD 1.x/2.x with one, SDXL with two). `<lora:...>` tags are
taken out of the text (models.loras loads them), `<hypernet:...>` ones too (nothing loads those), and
both are named in a note; the prompt is stored as typed either way.
"""

from __future__ import annotations

import math
import re
from typing import Any

from diffusers_tui.engine.text import shown

#: A1111's tokenizer for emphasis (modules/prompt_parser.py: re_attention).
_ATTENTION = re.compile(r"\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)
_EXTRA_NETWORK = re.compile(r"<(lora|lyco|hypernet):[^>]*>", re.I)
_SYNTAX = re.compile(r"[()\[\]]|\bBREAK\b|<(?:lora|lyco|hypernet):", re.I)
#: A1111's BREAK in a run list (its own marker: the text BREAK at weight -1, which a weight alone cannot mean).
_BREAK_RUN = ("BREAK", -1)
#: The largest weight an embedding can be scaled by in float32.
_LARGEST_WEIGHT = 3.4e38


def has_a1111_syntax(text: str) -> bool:
    return bool(_SYNTAX.search(text or ""))


def attention_runs(text: str) -> list[tuple[str, float]]:
    """A1111's parse_prompt_attention: (text, weight) runs; a BREAK is ("BREAK", -1)."""
    runs: list[list[Any]] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    def multiply(start: int, factor: float) -> None:
        for run in runs[start:]:
            run[1] *= factor

    for match in _ATTENTION.finditer(text):
        part, weight = match.group(0), match.group(1)
        if part.startswith("\\"):
            runs.append([part[1:], 1.0])
        elif part == "(":
            round_brackets.append(len(runs))
        elif part == "[":
            square_brackets.append(len(runs))
        elif weight is not None and round_brackets:
            multiply(round_brackets.pop(), float(weight))
        elif part == ")" and round_brackets:
            multiply(round_brackets.pop(), 1.1)
        elif part == "]" and square_brackets:
            multiply(square_brackets.pop(), 1 / 1.1)
        else:
            for index, piece in enumerate(_BREAK.split(part)):
                if index:
                    runs.append(["BREAK", -1])
                runs.append([piece, 1.0])
    for start in round_brackets:
        multiply(start, 1.1)
    for start in square_brackets:
        multiply(start, 1 / 1.1)
    merged: list[list[Any]] = []
    for run in runs or [["", 1.0]]:
        if merged and merged[-1][1] == run[1] and tuple(run) != _BREAK_RUN and tuple(merged[-1]) != _BREAK_RUN:
            merged[-1][0] += run[0]
        else:
            merged.append(run)
    return [(text, weight) for text, weight in merged]


def _compel_text(runs: list[tuple[str, float]]) -> str:
    def escaped(text: str) -> str:
        # Any whitespace is a space (CLIP's tokenizer reads it so; compel's parser stops at a form feed).
        text = re.sub(r"\s", " ", text)
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace('"', '\\"')

    parts = []
    for text, weight in runs:
        if not text.strip():
            parts.append(text)
        elif abs(weight - 1.0) < 1e-9:
            parts.append(escaped(text))
        else:  # compel reads a plain decimal only: no exponent, no sign
            parts.append(f"({escaped(text.strip())}){_decimal(weight)}")
    return " ".join(part.strip() for part in parts if part.strip())


def _decimal(weight: float) -> str:
    return f"{weight:.6f}".rstrip("0").rstrip(".") or "0"


def unusable_weights(text: str) -> list[str]:
    """A1111 weights compel cannot take, as "'red' at -5": negative, infinite, or past float32's range."""
    return [f"{shown(run.strip(), 30)!r} at {weight:g}" for run, weight in attention_runs(_EXTRA_NETWORK.sub("", text))
            if (run, weight) != _BREAK_RUN and (not math.isfinite(weight) or not 0 <= weight <= _LARGEST_WEIGHT)]


def to_compel(text: str) -> tuple[str, list[str]]:
    """`text` in compel's syntax, and what was taken out of it (extra-network tags)."""
    removed = [match.group(0) for match in _EXTRA_NETWORK.finditer(text)]
    runs = attention_runs(_EXTRA_NETWORK.sub("", text))
    chunks: list[list[tuple[str, float]]] = [[]]
    for run in runs:
        if run == _BREAK_RUN:
            chunks.append([])
        else:
            chunks[-1].append(run)
    texts = [_compel_text(chunk) for chunk in chunks]
    if len(texts) == 1:
        return texts[0], removed
    return "(" + ", ".join(f'"{chunk}"' for chunk in texts) + ").and()", removed


def weighting_kind(pipe) -> str | None:
    """"sd" or "sdxl" where compel can build this pipeline's embeddings (CLIP text encoders), else None."""
    encoder = getattr(pipe, "text_encoder", None)
    if encoder is None or type(encoder).__name__ not in ("CLIPTextModel", "CLIPTextModelWithProjection"):
        return None
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "sdxl" if hasattr(pipe, "tokenizer_2") else None
    return "sd"


def applies(pipe, prompt: str, negative: str) -> bool:
    """Whether this run's prompt goes through compel: A1111 syntax, a CLIP encoder, and text compel can read."""
    return (weighting_kind(pipe) is not None and (has_a1111_syntax(prompt) or has_a1111_syntax(negative))
            and readable(prompt, negative))


def readable(prompt: str, negative: str) -> bool:
    """Whether compel's parser takes both prompts once translated, with weights it can apply (odd text is left
    to the pipeline as typed)."""
    from compel import Compel

    if unusable_weights(prompt) or unusable_weights(negative):
        return False
    try:
        for text in (prompt, negative):
            Compel.parse_prompt_string(to_compel(text)[0])
    except Exception:  # noqa: BLE001 - pyparsing's errors: the plain prompt still runs
        return False
    return True


def prompt_kwargs(pipe, prompt: str, negative: str) -> dict[str, Any]:
    """The pipeline's prompt arguments: embeddings built by compel from A1111 syntax."""
    from compel import CompelForSD, CompelForSDXL

    positive_text, negative_text = _with_embedding_vectors(pipe, to_compel(prompt)[0], to_compel(negative)[0])
    if weighting_kind(pipe) == "sdxl":
        conditioning = CompelForSDXL(pipe)(positive_text, negative_prompt=negative_text)
        return {"prompt_embeds": conditioning.embeds, "pooled_prompt_embeds": conditioning.pooled_embeds,
                "negative_prompt_embeds": conditioning.negative_embeds,
                "negative_pooled_prompt_embeds": conditioning.negative_pooled_embeds}
    conditioning = CompelForSD(pipe)(positive_text, negative_prompt=negative_text)
    return {"prompt_embeds": conditioning.embeds, "negative_prompt_embeds": conditioning.negative_embeds}


def recipe_facts(pipe, prompt: str, negative: str) -> dict[str, str]:
    """What the recipe's snippet needs to build the same embeddings: compel's wrapper and texts."""
    positive_text, negative_text = _with_embedding_vectors(pipe, to_compel(prompt)[0], to_compel(negative)[0])
    return {"wrapper": "CompelForSDXL" if weighting_kind(pipe) == "sdxl" else "CompelForSD",
            "prompt": positive_text, "negative_prompt": negative_text}


def _with_embedding_vectors(pipe, *texts: str) -> tuple[str, ...]:
    """The texts with each multi-vector embedding's word followed by its other vectors' tokens ("x x_1 x_2"),
    as the pipeline's own prompt encoding writes them (compel reads the text as it is)."""
    convert = getattr(pipe, "maybe_convert_prompt", None)
    if convert is None or not getattr(pipe, "tokenizer", None):
        return texts
    return tuple(convert(text, pipe.tokenizer) for text in texts)


def prompt_syntax_note(prompt: str, negative: str, summary) -> str | None:
    """The note for a prompt's A1111 syntax on a loaded model (its ModelSummary); None when it has none."""
    if summary is None or summary.mode != "text-to-image":
        return None
    return syntax_note(prompt, negative, summary.prompt_weighting)


def syntax_note(prompt: str, negative: str, kind: str | None) -> str | None:
    """What became of A1111 syntax in a prompt on a model whose weighting is `kind` (None: not available)."""
    text = f"{prompt}\n{negative}"
    if not has_a1111_syntax(text):
        return None
    removed = sorted({match.group(0) for match in _EXTRA_NETWORK.finditer(text) if match.group(1).lower() == "hypernet"})
    loras = sorted({match.group(0) for match in _EXTRA_NETWORK.finditer(prompt) if match.group(1).lower() != "hypernet"})
    lora = f"; {', '.join(removed)} not applied (hypernetworks are not loaded here)" if removed else ""
    lora += f"; {', '.join(loras)} loaded as LoRAs" if loras else ""
    unusable = unusable_weights(prompt) + unusable_weights(negative)
    if kind is not None and unusable:
        return (f"A1111 weights compel cannot apply (negative, infinite or past float32's range: "
                f"{', '.join(unusable[:3])}): the prompt runs as typed")
    if kind is not None and not readable(prompt, negative):
        return "A1111 prompt syntax could not be read here (compel's parser refused the text): the prompt runs as typed"
    if kind is None:
        return ("A1111 prompt syntax ((word:1.2), [word], BREAK) is not applied on this model (compel weights CLIP "
                f"text encoders only): it is read as text{lora}")
    return f"A1111 emphasis and BREAK applied through compel{lora + ', taken out of the text' if lora else ''}"
