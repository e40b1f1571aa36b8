"""Textual-inversion embeddings, as A1111 uses them: a file in an embeddings folder is a word, its file stem,
that the prompt or the negative prompt may use; it loads with diffusers' load_textual_inversion.

A1111 loads every embedding in its folder and matches their names in the tokenized prompt; here an
embedding loads (once per model, by its file's content) the first time a run's prompt names it, which
gives the same prompt the same conditioning, and leaves a run that names none as the plain model's. An
SDXL embedding (clip_l and clip_g tensors) loads into both text encoders.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.models.loras import NamedFile, file_hash, files_under, named_files
from diffusers_tui.engine.text import shown

#: Embedding file types: A1111's (.pt, .safetensors) and diffusers' (.bin).
EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")


def named(texts: Iterable[str], folders: Sequence[str | os.PathLike]) -> list[tuple[str, Path]]:
    """(name, file) for each embedding in `folders` whose name the texts use as a word (CLIP's tokenizer
    lowercases, so case does not matter); the first folder's file wins a name, as a LoRA's does."""
    texts = [text for text in texts if text]
    found: dict[str, Path] = {}
    for folder in folders:
        for path in files_under(folder, EMBEDDING_SUFFIXES):
            name = path.stem
            word = re.compile(rf"(?<![\w]){re.escape(name)}(?![\w])", re.I)
            if name.lower() not in found and any(word.search(text) for text in texts):
                found[name.lower()] = path
    return [(path.stem, path) for path in found.values()]


def list_embeddings(folders: Sequence[str | os.PathLike]) -> list[NamedFile]:
    """Every embedding file in `folders`, by its word (a word differing only in case is the same word)."""
    return named_files(folders, EMBEDDING_SUFFIXES, key=str.lower)


def a1111_hash(path: Path) -> str:
    """The short hash A1111 writes in `TI hashes`: the file's SHA-256, 12 characters."""
    return file_hash(path)[:12]


def apply(loaded, texts: Iterable[str], options=None) -> list[dict]:
    """Load the embeddings `texts` name (from `options.embedding_dirs`) into `loaded`'s pipeline, once each;
    returns what the recipe records of each: {"name", "path", "sha256", "a1111_hash"}. RequestError names
    one that cannot load, and why."""
    folders = getattr(options, "embedding_dirs", ())
    found = named(texts, folders) if folders else []
    if not found:
        return []
    pipe = loaded.pipeline
    if pipe is None or not hasattr(pipe, "load_textual_inversion"):
        names = ", ".join(shown(name, 40) for name, _ in found)
        raise RequestError("embedding", f"the prompt names the embedding {names}, and this model loads none (no "
                                        "textual-inversion loader): leave the word out, or move the file out of "
                                        "the embeddings folder")
    records = []
    for name, path in found:
        if path.suffix.lower() != ".safetensors" and not getattr(options, "allow_pickle", False):
            raise RequestError("embedding", f"{shown(path.name)} is a pickle file ({path.suffix}), which can run "
                                            "code: use its .safetensors form, or --allow-pickle for a file you trust")
        digest = file_hash(path)
        if loaded.embeddings.get(name.lower()) != digest:
            if name.lower() in loaded.embeddings:
                raise RequestError("embedding", f"{shown(name)}: another file of that name is loaded already; "
                                                "load the model again to use this one")
            loaded.embedding_encoders[name.lower()] = _load(pipe, path, name)
            loaded.embeddings[name.lower()] = digest
        records.append({"name": name, "path": str(path.resolve()), "sha256": digest, "a1111_hash": digest[:12],
                        "encoders": loaded.embedding_encoders[name.lower()]})
    return records


def _load(pipe, path: Path, name: str) -> int:
    """Load `path` as the word `name`: into both text encoders where it has SDXL's clip_l and clip_g.
    Returns how many text encoders took it."""
    try:
        state = _state(path)
        if "clip_g" in state and getattr(pipe, "text_encoder_2", None) is not None:
            pipe.load_textual_inversion(state["clip_l"], token=name, text_encoder=pipe.text_encoder,
                                        tokenizer=pipe.tokenizer)
            pipe.load_textual_inversion(state["clip_g"], token=name, text_encoder=pipe.text_encoder_2,
                                        tokenizer=pipe.tokenizer_2)
            return 2
        pipe.load_textual_inversion(state, token=name)
        return 1
    except RequestError:
        raise
    except Exception as error:  # noqa: BLE001 - a file from anywhere: whatever diffusers raises is named
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RequestError("embedding", f"{shown(path.name)} does not load as an embedding for this model: "
                                        f"{shown(text, 200)} (one for another model family?)") from None


def _state(path: Path) -> dict:
    """The file's tensors: a .safetensors file's, or a pickle's read by torch's weights-only loader."""
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    import torch

    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise RequestError("embedding", f"{shown(path.name)} holds no embedding (not a dictionary of tensors)")
    return state


def missing_notes(hashes, folders) -> list[str]:
    """A note for each embedding the recipe used that is not here, or is here as another file: its word is
    then read as text, or as that file."""
    notes = []
    for name, digest in hashes:
        here = named([name], folders)
        if not here:
            searched = ", ".join(str(folder) for folder in folders) or "no embeddings folder (set embeddings_dir)"
            notes.append(f"embedding {shown(name, 60)} not found (looked in: {shown(searched, 200)}): its word is "
                         "read as text, so this is not the recipe's picture")
        elif digest and not file_hash(here[0][1]).startswith(digest[:12]):
            notes.append(f"embedding {shown(name, 60)} here ({shown(str(here[0][1]), 200)}) is not the recipe's "
                         f"file (its hash is {shown(digest, 20)})")
    return notes
