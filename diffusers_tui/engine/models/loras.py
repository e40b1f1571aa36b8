"""LoRA files on a loaded pipeline: found by path or by name in the LoRA folders, loaded once with diffusers'
load_lora_weights (peft), and weighted per run with set_adapters; a run without LoRAs runs with them off.

A1111 resolves `<lora:name:weight>` by file stem in its Lora folder; a name here is resolved the same way in
the folders given (the `lora_dir` setting, or `--lora-dir`). An adapter is named by its file's content
hash, so the same file under two names loads once, and a changed file loads again.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Sequence

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.text import shown

#: LoRA file types, as A1111 lists them in its Lora folder.
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")
#: A LoRA's weight: A1111 accepts any number; past ±10 a picture is noise.
MAX_LORA_WEIGHT = 10.0
#: A1111's extra-network tag for a LoRA: <lora:name>, <lora:name:weight>, <lora:name:te:unet> (LyCORIS's
#: <lyco:...> is the same since A1111 1.5). The text encoder's and the UNet's weight are one weight here.
PROMPT_TAG = re.compile(r"<(?:lora|lyco):([^:>]+)(?::([^:>]*))?(?::[^>]*)?>", re.I)


def prompt_tags(prompt: str) -> list[tuple[str, float]]:
    """The LoRAs a prompt's A1111 tags name, as (name, weight) pairs (weight 1 where none is written)."""
    found = []
    for match in PROMPT_TAG.finditer(prompt):
        name, weight_text = match.group(1).strip(), (match.group(2) or "1").strip()
        try:
            weight = float(weight_text) if weight_text.isascii() else float("nan")
        except ValueError:
            raise RequestError("prompt", f"{shown(match.group(0), 80)}: {shown(weight_text, 20)!r} is not a "
                                         "LoRA weight; write <lora:name:0.8>") from None
        found.append((name, check_weight(weight, name)))
    return found


def parse_lora(text: str) -> tuple[str, float]:
    """`--lora PATH_OR_NAME[:WEIGHT]` -> (path or name, weight); the weight defaults to 1, as A1111's tags do."""
    text = str(text).strip()
    name, separator, weight_text = text.rpartition(":")
    try:
        weight = float(weight_text) if separator and name and weight_text.isascii() else None
    except ValueError:
        if not any(mark in weight_text for mark in "./\\"):
            raise RequestError("lora", f"{shown(text, 80)!r}: {shown(weight_text, 20)!r} is not a weight; write "
                                       "NAME or NAME:WEIGHT, e.g. detail:0.7") from None
        weight = None  # the colon is a path's ("C:/loras/x.safetensors", "a:b.safetensors")
    if weight is None:
        name, weight = text, 1.0
    if not name.strip():
        raise RequestError("lora", "give a LoRA file or its name, e.g. --lora detail:0.7")
    check_weight(weight, name)
    return name.strip(), weight


def of_request(request) -> list[tuple[str, float]]:
    """A request's LoRAs: its own (--lora, a recipe), then those its prompt's tags name."""
    return [*request.loras, *prompt_tags(request.prompt)]


def check_weight(weight: object, name: str = "") -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
            -MAX_LORA_WEIGHT <= float(weight) <= MAX_LORA_WEIGHT):  # NaN fails this too
        raise RequestError("lora", f"{shown(name, 80)}: weight {weight!r} is outside -{MAX_LORA_WEIGHT:g} to "
                                   f"{MAX_LORA_WEIGHT:g}")
    return float(weight)


def resolve(name: str, folders: Sequence[str | os.PathLike] = ()) -> Path:
    """The LoRA file `name` names: a path to a file, or a file stem (A1111's rule) in `folders`, in order."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    for folder in folders:
        folder = Path(folder).expanduser()
        for suffix in ("", *LORA_SUFFIXES):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file() and candidate.suffix.lower() in LORA_SUFFIXES:
                return candidate
    searched = ", ".join(shown(str(folder), 120) for folder in folders) or "no LoRA folder (set lora_dir)"
    raise RequestError("lora", f"{shown(name, 120)!r} is not a LoRA file, nor a name in: {searched}")


def file_hash(path: Path) -> str:
    """The file's SHA-256 in hex: a LoRA of 150 MB takes about half a second to hash, which a run that only
    changes its weight should not pay again (see _sha256)."""
    return _sha256(path, after_header=False)


def a1111_hash(path: Path) -> str:
    """The short hash A1111 writes in `Lora hashes`: for a .safetensors file kohya's (the SHA-256 of what
    follows the JSON header, so editing the metadata keeps it), else the whole file's; 12 characters."""
    return _sha256(path, after_header=path.suffix.lower() == ".safetensors")[:12]


def _sha256(path: Path, after_header: bool) -> str:
    """A file's SHA-256 (from past a .safetensors header where asked), worked out once per path, size and
    modification time."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, after_header)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            if after_header:
                handle.seek(8 + int.from_bytes(handle.read(8), "little"))
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


#: SHA-256s already worked out, by (path, size, mtime, whether past the header).
_HASHES: dict[tuple, str] = {}


def by_a1111_hash(short: str, folders: Sequence[str | os.PathLike]) -> Path | None:
    """The LoRA file in `folders` whose A1111 short hash is `short`, if one is."""
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in LORA_SUFFIXES and path.is_file() and a1111_hash(path) == short.lower()[:12]:
                return path
    return None


def apply(loaded, loras: Iterable[tuple[str, float]], options=None) -> list[dict]:
    """Set `loaded`'s pipeline to run with `loras` ((path or name, weight) pairs) and no others; returns what
    the recipe records of each: {"name", "path", "sha256", "weight"}. RequestError names a file that cannot
    be found or applied. Names are looked for in `options.lora_dirs` (a LoadOptions); a .pt or .ckpt file (a
    pickle, which can run code) loads only with `options.allow_pickle`."""
    folders = getattr(options, "lora_dirs", ())
    allow_pickle = getattr(options, "allow_pickle", False)
    loras = list(loras)
    pipe = loaded.pipeline
    adapters: dict[str, str] = loaded.lora_adapters
    if not loras:
        if adapters and pipe is not None:
            pipe.disable_lora()  # the plain model, exactly: peft layers then skip their update altogether
        return []
    if pipe is None or not hasattr(pipe, "load_lora_weights"):
        raise RequestError("lora", "this model has no LoRA loader (a bare UNet, or a pipeline diffusers loads "
                                   "no LoRAs into); leave out the LoRAs")
    records: dict[str, dict] = {}
    for name, weight in loras:
        path = resolve(name, folders)
        if path.suffix.lower() != ".safetensors" and not allow_pickle:
            raise RequestError("lora", f"{shown(path.name)} is a pickle file ({path.suffix}), which can run code: "
                                       "use its .safetensors form, or --allow-pickle for a file you trust")
        digest = file_hash(path)
        if digest not in adapters:
            adapter = f"lora_{digest[:16]}"
            _load(pipe, path, adapter)
            adapters[digest] = adapter
        if digest in records:  # named twice (a tag and --lora, say): its weights add up, as A1111's do
            records[digest]["weight"] += check_weight(weight, name)
            continue
        records[digest] = {"name": name, "path": str(path.resolve()), "sha256": digest,
                           "a1111_hash": a1111_hash(path), "weight": check_weight(weight, name)}
    records = list(records.values())
    names = [adapters[record["sha256"]] for record in records]
    pipe.enable_lora()
    pipe.set_adapters(names, adapter_weights=[record["weight"] for record in records])
    return records


def _load(pipe, path: Path, adapter: str) -> None:
    try:
        pipe.load_lora_weights(str(path), adapter_name=adapter)
    except ImportError as error:  # peft missing: diffusers says which package
        raise RequestError("lora", f"{shown(path.name)}: loading LoRAs needs peft ({shown(error, 200)}); "
                                   "pip install peft") from None
    except Exception as error:  # noqa: BLE001 - a file from anywhere: whatever diffusers raises is named
        raise RequestError("lora", f"{shown(path.name)} does not apply to this model: "
                                   f"{shown(str(error).splitlines()[0] if str(error) else type(error).__name__, 300)} "
                                   "(a LoRA for another model family, or a LyCORIS LoKr/LoHa file?)") from None
    # diffusers loads a file none of whose keys match the model's layers without a word, and nothing with it.
    if not any(adapter in names for names in pipe.get_list_adapters().values()):
        raise RequestError("lora", f"{shown(path.name)} does not apply to this model: none of its layers are the "
                                   "model's (a LoRA for another model family?)")


def recorded(result, applied: list[dict]):
    """`result` with the LoRAs it ran with (apply's records) in its recipe; a comparison's lanes likewise."""
    if not applied:
        return result
    if hasattr(result, "lanes"):
        return replace(result, lanes=tuple(replace(lane, result=recorded(lane.result, applied))
                                           for lane in result.lanes))
    return replace(result, recipe={**result.recipe, "loras": applied})


def matched(recipe, folders: Sequence[str | os.PathLike] = ()):
    """A read recipe (files.reading.Recipe) with its LoRAs looked for here, as A1111 finds them: by the short
    hash its `Lora hashes` gives, then by name. A prompt tag found by hash under another name is renamed;
    one not found is taken out of the prompt, a listed file out of its LoRAs, and each is named in the
    notes, so the rest re-runs."""
    fields, notes = dict(recipe.fields), list(recipe.notes)
    hashes = dict(getattr(recipe, "lora_hashes", ()) or ())

    def found(name: str) -> tuple[Path | None, bool]:
        """The file `name` stands for, and whether its hash found it."""
        by_hash = by_a1111_hash(hashes[name], folders) if name in hashes else None
        if by_hash is not None:
            return by_hash, True
        try:
            return resolve(name, folders), False
        except RequestError:
            return None, False

    prompt, renamed, missing = str(fields.get("prompt") or ""), [], []
    for match in PROMPT_TAG.finditer(prompt):
        name = match.group(1).strip()
        path, by_hash = found(name)
        if path is None:
            missing.append(match.group(0))
        elif by_hash and path.stem != name:
            renamed.append((match.group(0), match.group(0).replace(match.group(1), path.stem, 1), name, path))
    for tag in missing:
        prompt = prompt.replace(tag, "")
    for tag, new_tag, name, path in renamed:
        prompt = prompt.replace(tag, new_tag)
        notes.append(f"LoRA {shown(name, 80)!r} found by its hash ({hashes[name]}) as {shown(str(path), 200)}")
    pairs = [pair for pair in fields.get("loras") or () if isinstance(pair, (list, tuple)) and pair
             and isinstance(pair[0], str)]
    kept = [pair for pair in pairs if found(pair[0])[0] is not None]
    lost = [pair[0] for pair in pairs if pair not in kept]
    if missing or lost:
        searched = ", ".join(str(folder) for folder in folders) or "no LoRA folder (set lora_dir)"
        notes.append(f"LoRA {', '.join(shown(item, 80) for item in [*missing, *lost])} not found (looked in: "
                     f"{shown(searched, 200)}): left out, so this is not the recipe's picture")
    if not (missing or lost or renamed):
        return recipe
    fields["prompt"] = re.sub(r"[ \t]{2,}", " ", prompt).strip() if missing else prompt
    if "loras" in fields:
        fields["loras"] = kept
    return replace(recipe, fields=fields, notes=tuple(notes))
