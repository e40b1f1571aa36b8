"""LoRA files on a loaded pipeline: found by path or by name in the LoRA folders, loaded once with diffusers'
load_lora_weights (peft), and weighted per run with set_adapters; a run without LoRAs runs with them off.

A1111 resolves `<lora:name:weight>` by file stem in its Lora folder; a name here is resolved the same way in
the folders given (the `lora_dir` setting, or `--lora-dir`). An adapter is named by its file's content
hash, so the same file under two names loads once, and a changed file loads again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
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


def named_loras(request) -> list[str]:
    """The LoRA names a request runs with (its own, then its prompt's tags), each once, as written."""
    return list(dict.fromkeys(name for name, _ in of_request(request)))


def with_lora_weight(request, name: str, weight: float):
    """`request` with LoRA `name` at `weight` in all (a study's LoRA axis): where the prompt tags it, the first
    tag takes the weight and any other tag of it 0 (the prompt stays A1111's, tag for tag); otherwise its
    entries in `loras` give way to one at the weight."""
    from dataclasses import replace as replaced

    stem, seen = _stem(name), [False]

    def retag(match: re.Match) -> str:
        if _stem(match.group(1).strip()) != stem:
            return match.group(0)
        value, seen[0] = (0.0 if seen[0] else weight), True
        return f"<lora:{match.group(1).strip()}:{value:g}>"

    prompt = PROMPT_TAG.sub(retag, request.prompt)
    others = tuple(pair for pair in request.loras if _stem(pair[0]) != stem)
    return replaced(request, prompt=prompt, loras=others if seen[0] else (*others, (name, weight)))


def check_weight(weight: object, name: str = "") -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
            -MAX_LORA_WEIGHT <= float(weight) <= MAX_LORA_WEIGHT):  # NaN fails this too
        raise RequestError("lora", f"{shown(name, 80)}: weight {weight!r} is outside -{MAX_LORA_WEIGHT:g} to "
                                   f"{MAX_LORA_WEIGHT:g}")
    return float(weight)


def resolve(name: str, folders: Sequence[str | os.PathLike] = ()) -> Path:
    """The LoRA file `name` names: a path to a file; a path inside one of `folders` (other tools write
    "styles/detail.safetensors", or with backslashes); or a file stem anywhere under them, A1111's rule."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    relative, stem = name.replace("\\", "/").strip("/"), _stem(name)
    for folder in folders:
        root = Path(folder).expanduser().resolve()
        for candidate in (root / relative, *(root / f"{relative}{suffix}" for suffix in LORA_SUFFIXES)):
            # Inside the folder only: a name read from a PNG is untrusted ("../../elsewhere").
            if candidate.suffix.lower() in LORA_SUFFIXES and candidate.is_file() and \
                    candidate.resolve().is_relative_to(root):
                return candidate
    for folder in folders:
        for candidate in lora_files(folder):
            if candidate.stem == stem:
                return candidate
    searched = ", ".join(shown(str(folder), 120) for folder in folders) or "no LoRA folder (set lora_dir)"
    raise RequestError("lora", f"{shown(name, 120)!r} is not a LoRA file, nor a name in: {searched}")


#: Files looked at under one LoRA folder at most: a folder pointed at a whole disk ends the walk there.
MAX_LISTED = 20_000


def lora_files(folder: str | os.PathLike) -> list[Path]:
    """The LoRA files under `folder` and its subfolders (A1111 lists those too), sorted by path; [] for a
    folder that is missing or cannot be read."""
    return files_under(folder, LORA_SUFFIXES)


def files_under(folder: str | os.PathLike, suffixes: tuple[str, ...]) -> list[Path]:
    """The files with one of `suffixes` under `folder` and its subfolders, sorted by path."""
    root = Path(folder).expanduser()
    found, looked = [], 0
    for directory, subfolders, names in os.walk(root, onerror=None, followlinks=False):
        subfolders.sort()
        looked += len(names)
        found.extend(Path(directory) / name for name in names if name.lower().endswith(suffixes))
        if looked > MAX_LISTED:
            break
    return sorted(path for path in found if path.is_file())


@dataclass(frozen=True)
class NamedFile:
    """A LoRA or embedding file in its folders, by the name A1111 gives it (its stem); `shadowed_by` names
    the file an earlier folder or subfolder holds under the same name, which is the one the name finds."""

    name: str
    path: Path
    size_bytes: int
    shadowed_by: Path | None = None


def list_loras(folders: Sequence[str | os.PathLike]) -> list[NamedFile]:
    """Every LoRA file in `folders`, in the order a name is looked for (folder by folder, then by path)."""
    return named_files(folders, LORA_SUFFIXES, key=str)


def named_files(folders: Sequence[str | os.PathLike], suffixes: tuple[str, ...], key=str) -> list[NamedFile]:
    """Every file with one of `suffixes` in `folders`, in the order a name is looked for; `key` makes the name
    a name finds it by (str.lower where case does not matter), so a later file of that name is shadowed."""
    first: dict[str, Path] = {}
    listed = []
    for folder in folders:
        for path in files_under(folder, suffixes):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            listed.append(NamedFile(path.stem, path, size, first.get(key(path.stem))))
            first.setdefault(key(path.stem), path)
    return listed


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
        import hashlib  # off the app's start path, which lists LoRAs but hashes none

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


def by_hash(digest: str, folders: Sequence[str | os.PathLike]) -> Path | None:
    """The LoRA file in `folders` that a tool's hash names: A1111's short hash (kohya's, 12 characters), or
    the start of the whole file's SHA-256 (Fooocus writes 10 characters)."""
    digest = digest.strip().lower()
    if len(digest) < 8 or any(character not in "0123456789abcdef" for character in digest):
        return None
    for folder in folders:
        for path in lora_files(folder):
            if a1111_hash(path) == digest[:12] or file_hash(path).startswith(digest):
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
        if adapters and pipe is not None and loaded.lora_weights is not None:
            pipe.disable_lora()  # the plain model, exactly: peft layers then skip their update altogether
            loaded.lora_weights = None
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
            loaded.lora_weights = ("changed by a load",)  # diffusers makes a new adapter the active one
        if digest in records:  # named twice (a tag and --lora, say): its weights add up, as A1111's do
            records[digest]["weight"] += check_weight(weight, name)
            continue
        records[digest] = {"name": name, "path": str(path.resolve()), "sha256": digest,
                           "a1111_hash": a1111_hash(path), "weight": check_weight(weight, name)}
    records = list(records.values())
    wanted = (tuple(adapters[record["sha256"]] for record in records), tuple(record["weight"] for record in records))
    if loaded.lora_weights != wanted:  # the run before set these: nothing to do
        pipe.enable_lora()
        pipe.set_adapters(list(wanted[0]), adapter_weights=list(wanted[1]))
        loaded.lora_weights = wanted
    return records


#: Key parts of LyCORIS files that are not LoRAs (LoKr, LoHa, (IA)^3, OFT), which diffusers does not read.
LYCORIS_KINDS = {".lokr_": "LoKr", ".hada_": "LoHa", ".on_input": "(IA)^3", ".oft_": "OFT"}


def _lycoris_kind(path: Path) -> str | None:
    """The LyCORIS kind a .safetensors file's keys show (read from its header alone), or None."""
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            keys = list(handle.keys())
    except Exception:  # noqa: BLE001 - a damaged file: loading it says what is wrong
        return None
    return next((kind for part, kind in LYCORIS_KINDS.items() if any(part in key for key in keys)), None)


def _load(pipe, path: Path, adapter: str) -> None:
    import logging

    kind = _lycoris_kind(path)
    if kind:
        raise RequestError("lora", f"{shown(path.name)} is a LyCORIS {kind} file, which diffusers' LoRA loader does "
                                   "not read: use a plain LoRA")

    # diffusers logs a failed load's whole state-dict error (a line per layer) before raising it: the
    # RequestError below is the one line the user gets.
    peft_log = logging.getLogger("diffusers.loaders.peft")
    level = peft_log.level
    peft_log.setLevel(logging.CRITICAL)
    try:
        pipe.load_lora_weights(str(path), adapter_name=adapter)
    except ImportError as error:  # peft missing: diffusers says which package
        raise RequestError("lora", f"{shown(path.name)}: loading LoRAs needs peft ({shown(error, 200)}); "
                                   "pip install peft") from None
    except Exception as error:  # noqa: BLE001 - a file from anywhere: whatever diffusers raises is named
        text = str(error)
        why = ("its layers are not this model's sizes" if "size mismatch" in text else
               shown(text.splitlines()[0] if text else type(error).__name__, 300))
        raise RequestError("lora", f"{shown(path.name)} does not apply to this model: {why} (a LoRA for another "
                                   "model family, or a LyCORIS LoKr/LoHa file?)") from None
    finally:
        peft_log.setLevel(level)
    # diffusers loads a file none of whose keys match the model's layers without a word, and nothing with it.
    if not any(adapter in names for names in pipe.get_list_adapters().values()):
        raise RequestError("lora", f"{shown(path.name)} does not apply to this model: none of its layers are the "
                                   "model's (a LoRA for another model family?)")


def matched(recipe, folders: Sequence[str | os.PathLike] = ()):
    """A read recipe (files.reading.Recipe) with its LoRAs looked for here, as A1111 finds them: by the hash
    the PNG gives (A1111's `Lora hashes`, Fooocus's), then by name. A prompt tag found by hash under another
    name is renamed, a listed LoRA found by hash is named by its path; one not found is taken out of the
    prompt or the list, and each is named in the notes, so the rest re-runs."""
    fields, notes = dict(recipe.fields), list(recipe.notes)
    hashes = dict(getattr(recipe, "lora_hashes", ()) or ())
    changed = False

    def found(name: str) -> tuple[Path | None, bool]:
        """The file `name` stands for, and whether its hash found it (noted where the name differs)."""
        hashed = by_hash(hashes[name], folders) if name in hashes else None
        if hashed is not None:
            if hashed.stem != _stem(name):
                notes.append(f"LoRA {shown(name, 80)!r} found by its hash ({shown(hashes[name], 20)}) as "
                             f"{shown(str(hashed), 200)}")
            return hashed, True
        try:
            return resolve(name, folders), False
        except RequestError:
            return None, False

    prompt, missing = str(fields.get("prompt") or ""), []
    for match in PROMPT_TAG.finditer(prompt):
        path, was_hashed = found(match.group(1).strip())
        if path is None:
            missing.append(match.group(0))
            prompt = re.sub(r"[ \t]{2,}", " ", prompt.replace(match.group(0), "")).strip()
        elif was_hashed and path.stem != match.group(1).strip():
            prompt = prompt.replace(match.group(0), match.group(0).replace(match.group(1), path.stem, 1))
            changed = True
    kept = []
    for pair in fields.get("loras") or ():
        if not (isinstance(pair, (list, tuple)) and pair and isinstance(pair[0], str)):
            kept.append(pair)  # the request refuses it, naming it
            continue
        path, was_hashed = found(pair[0])
        if path is None:
            missing.append(pair[0])
            continue
        kept.append([str(path), *pair[1:]] if was_hashed else list(pair))
        changed = changed or was_hashed
    if missing:
        searched = ", ".join(str(folder) for folder in folders) or "no LoRA folder (set lora_dir)"
        notes.append(f"LoRA {', '.join(shown(item, 80) for item in missing)} not found (looked in: "
                     f"{shown(searched, 200)}): left out, so this is not the recipe's picture")
    if not (missing or changed):
        return recipe
    fields["prompt"] = prompt
    if "loras" in fields:
        fields["loras"] = kept
    return replace(recipe, fields=fields, notes=tuple(notes))


def _stem(name: str) -> str:
    """A LoRA name's file stem: "styles/detail.safetensors" and "detail" are both "detail"."""
    stem = name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return stem.rsplit(".", 1)[0] if stem.lower().endswith(LORA_SUFFIXES) else stem
