"""Settings that stick: built-in defaults, then the TOML config file, then DIFFUSERS_TUI_* variables,
then command-line options; each value remembers where it came from.

The file is `$XDG_CONFIG_HOME/diffusers-tui/config.toml` (`~/.config/...` without it, or
`DIFFUSERS_TUI_CONFIG`), written when the app saves its settings (F9). A file that does
not parse is reported with its line and ignored; a bad value is reported with its line
and that one setting falls back.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from diffusers_tui.engine import (GenerationRequest, LoadOptions, RequestError, UserFacingError, check_whole,
                                  max_threads, parse_size, parse_whole, read_bounded, shown)

ENV_PREFIX = "DIFFUSERS_TUI_"
GRAPHICS = ("auto", "halfblock", "kitty", "sixel")
FRAME_RATE_RANGE = (1, 60)


_KIND_OF = {int: "a whole number", float: "a number", str: "text"}


def _request_field(name: str, convert: Callable[[str], Any]):
    """A check that validates one value as GenerationRequest does; env text goes through `convert`."""
    def check(value: Any, from_text: bool) -> Any:
        if from_text:
            try:
                value = convert(value)
            except ValueError:
                raise RequestError(name, f"{value!r} is not {_KIND_OF[convert]}") from None
        elif isinstance(value, str) and convert is not str:  # TOML's "7.5" is text, whatever it spells
            raise RequestError(name, f"{shown(value, 40)!r} is text in quotes, not {_KIND_OF[convert]}: write "
                                     f"{name} = {shown(value, 40)} without the quotes")
        GenerationRequest(**{name: value})
        return value
    return check


def _choice(name: str, choices: tuple[str, ...]):
    def check(value: Any, from_text: bool) -> Any:
        if value not in choices:
            raise RequestError(name, f"{value!r} is not one of {', '.join(choices)}")
        return value
    return check


def _load_option(name: str):
    def check(value: Any, from_text: bool) -> Any:
        if not isinstance(value, str):
            raise RequestError(name, f"{value!r} is not text")
        LoadOptions(**{name: value})
        return value
    return check


def _text(name: str):
    def check(value: Any, from_text: bool) -> Any:
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise RequestError(name, "give a non-empty name or path")
        return value
    return check


def _optional_path(name: str):
    def check(value: Any, from_text: bool) -> Any:
        if not isinstance(value, str) or "\x00" in value:
            raise RequestError(name, "give a folder path, or leave it empty")
        return value
    return check


def _folders(name: str):
    """A list of folders: a TOML list, repeated options, or text separated as PATH is (os.pathsep)."""
    def check(value: Any, from_text: bool) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(os.pathsep) if part]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and "\x00" not in v for v in value):
            raise RequestError(name, "give a folder, or a list of folders")
        return list(value)
    return check


def _scheduler(value: Any, from_text: bool) -> Any:
    if value in (None, ""):
        return None  # the model's own scheduler
    GenerationRequest(scheduler=value)
    return value


def _schedule(value: Any, from_text: bool) -> Any:
    if value in (None, ""):
        return "Automatic"
    return GenerationRequest(schedule=value).schedule  # A1111's spelling


def _size(value: Any, from_text: bool) -> Any:
    if not isinstance(value, str):
        raise RequestError("size", f"{value!r} is not text like \"512x512\" (or \"\" for the model's own)")
    width, height = parse_size(value)
    GenerationRequest(width=width, height=height)
    return value


def _whole(name: str, low: int, high: int | None):
    def check(value: Any, from_text: bool) -> Any:
        return parse_whole(name, value, low, high) if from_text else check_whole(name, value, low, high)
    return check


def _keys(value: Any, from_text: bool) -> Any:
    if from_text or not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()):
        raise RequestError("keys", "must be a [keys] table of binding id = \"key,other key\"")
    return dict(value)


@dataclass(frozen=True)
class Setting:
    """One setting: its built-in default, and the check a value from a file, a variable or F9 passes."""

    default: Any
    check: Callable[[Any, bool], Any]


SETTINGS: dict[str, Setting] = {
    "model": Setting("demo", _text("model")),  # model the app opens and generate runs
    "device": Setting("auto", _load_option("device")),  # auto, cpu, cuda, cuda:N or mps
    "dtype": Setting("auto", _load_option("dtype")),  # auto, float32, float16 or bfloat16
    "offload": Setting("none", _load_option("offload")),  # none, model or sequential (CUDA)
    "vae": Setting("full", _load_option("vae")),  # full, sliced or tiled (decode in tiles: any size fits)
    "scheduler": Setting(None, _scheduler),  # registry name; empty for the model's own
    "schedule": Setting("Automatic", _schedule),  # Automatic, Uniform, Karras, Exponential, Beta or SGM Uniform
    "steps": Setting(20, _request_field("steps", int)),  # denoising steps
    "guidance": Setting(5.0, _request_field("guidance", float)),  # classifier-free guidance scale
    "size": Setting("", _size),  # WIDTHxHEIGHT; empty for the model's own
    "outputs": Setting("outputs", _text("outputs")),  # folder for saved images and index.jsonl
    "preview": Setting("x0", _request_field("preview", str)),  # x0 or noisy
    "preview_every": Setting(1, _request_field("preview_every", int)),  # a preview every N model calls
    "preview_method": Setting("auto", _request_field("preview_method", str)),  # auto, latent, taesd, vae or none
    "noise": Setting("auto", _request_field("noise", str)),  # auto, A1111 CPU, A1111 GPU, A1111 NV or ComfyUI
    "ensd": Setting(0, _request_field("ensd", int)),  # A1111's eta noise seed delta (0: none; 31337 is common)
    "taesd_folder": Setting("", _optional_path("taesd_folder")),
    "lora_dir": Setting([], _folders("lora_dir")),  # LoRA folders, searched in order for a LoRA by name
    "embeddings_dir": Setting([], _folders("embeddings_dir")),  # textual-inversion embeddings, a word by file stem
    "fps": Setting(15, _whole("fps", *FRAME_RATE_RANGE)),  # live frames per second at most
    "graphics": Setting("auto", _choice("graphics", GRAPHICS)),  # final image: auto, halfblock, kitty, sixel
    "threads": Setting(None, _whole("threads", 1, max_threads())),  # torch CPU threads; empty for all cores but one
    "connections": Setting(2, _whole("connections", 1, 64)),  # serve: browser sessions at once
    "keys": Setting({}, _keys),  # key bindings by binding id, e.g. generate = "ctrl+g,f10"
}


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the config file lives (it may not exist yet)."""
    if environ.get(ENV_PREFIX + "CONFIG"):
        return Path(environ[ENV_PREFIX + "CONFIG"]).expanduser()
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "diffusers-tui" / "config.toml"


@dataclass
class Settings:
    """The effective value of every setting, where each came from, and what was wrong."""

    values: dict[str, Any]
    sources: dict[str, str]
    path: Path
    warnings: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    @property
    def pinned(self) -> set[str]:
        """The settings given on the command line: they outrank a recipe (see engine.build_request)."""
        return {name for name, source in self.sources.items() if source == "command line"}

    def rows(self) -> list[tuple[str, str, str]]:
        """(name, value, source) for `diffusers-tui config`."""
        return [(name, _shown(self.values[name]), self.sources[name]) for name in SETTINGS]


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
    return str(value)


def defaults(path: Path | None = None) -> Settings:
    """The built-in defaults alone (no file, no environment): what tests and embedders start from."""
    return Settings({name: s.default for name, s in SETTINGS.items()}, dict.fromkeys(SETTINGS, "default"),
                    path or config_path())


def load(command_line: Mapping[str, Any] | None = None, environ: Mapping[str, str] = os.environ,
         path: Path | None = None) -> Settings:
    """Defaults < config file < DIFFUSERS_TUI_* < `command_line` (only the options that were given)."""
    settings = defaults(path or config_path(environ))
    path = settings.path
    file_values, text = _read_file(path, settings.warnings)
    for name, value in file_values.items():
        if name not in SETTINGS:
            settings.warnings.append(f"{path}, line {_line_of(text, name)}: unknown setting {name!r} "
                                     f"(known: {', '.join(SETTINGS)})")
            continue
        _apply(settings, name, value, False, f"{path}, line {_line_of(text, name)}")
    for name in SETTINGS:
        variable = ENV_PREFIX + name.upper()
        if variable in environ and name != "keys":
            _apply(settings, name, environ[variable], True, f"env {variable}")
    for name, value in (command_line or {}).items():
        if name in SETTINGS and value is not None:
            settings.values[name], settings.sources[name] = value, "command line"  # argparse checked it
    return settings


def _apply(settings: Settings, name: str, value: Any, from_text: bool, source: str) -> None:
    try:
        settings.values[name] = SETTINGS[name].check(value, from_text)
        settings.sources[name] = source
    except RequestError as error:
        settings.warnings.append(f"{source}: {error}; using {_shown(settings.values[name])} instead")


#: A config file is a few hundred bytes; a bigger one is not a config (a device, a log).
MAX_CONFIG_BYTES = 1024 * 1024


def _read_file(path: Path, warnings: list[str]) -> tuple[dict[str, Any], str]:
    if not path.exists():
        if path.is_symlink():  # exists() is false for a link that loops or points at nothing
            warnings.append(f"config file {shown(str(path))} is a symbolic link that leads to no file (a loop, or "
                            "a missing target); using the defaults")
        return {}, ""
    try:
        text = read_bounded(path, MAX_CONFIG_BYTES, "config file").decode("utf-8")
    except UserFacingError as error:
        warnings.append(f"{error}; using the defaults")
        return {}, ""
    except UnicodeDecodeError as error:
        warnings.append(f"cannot read {shown(path)}: not UTF-8 text ({error.reason} at byte {error.start}); "
                        "using the defaults")
        return {}, ""
    import tomllib  # here, not at the top: most starts have no config file, and it costs 5 ms

    try:
        return tomllib.loads(text), text
    except RecursionError:
        warnings.append(f"{shown(path)} nests tables or arrays too deeply to read; using the defaults")
        return {}, text
    except tomllib.TOMLDecodeError as error:
        where = str(error)
        if "end of document" in where:
            where = where.replace("at end of document", f"at line {len(text.splitlines())}, its end")
        warnings.append(f"{path} is not valid TOML: {where}; using the defaults")
        return {}, text


def _line_of(text: str, name: str) -> int | str:
    """The line where `name` is set (a key, or a [table]), for messages."""
    pattern = re.compile(rf"^\s*(\[\s*{re.escape(name)}\s*\]|{re.escape(name)}\s*=)")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return "?"


def save(values: Mapping[str, Any], path: Path | None = None) -> Path:
    """Write `values` (checked) over what the file holds, atomically; returns the path."""
    import tomli_w
    import tomllib

    path = path or config_path()
    current: dict[str, Any] = {}
    try:
        current = tomllib.loads(read_bounded(path, MAX_CONFIG_BYTES, "config file").decode("utf-8"))
    except (UserFacingError, ValueError, RecursionError):
        pass  # missing, or broken and replaced by a good one; the message about it was shown at start
    for name, value in values.items():
        checked = SETTINGS[name].check(value, False)
        if checked is None:
            current.pop(name, None)  # TOML has no null: absent means the default
        else:
            current[name] = checked
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            tomli_w.dump(current, handle)
        os.replace(temp, path)  # the config is ours to replace, unlike an output
    finally:
        Path(temp).unlink(missing_ok=True)
    return path
