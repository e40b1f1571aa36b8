"""The commands against hostile input: escape codes, FIFOs, bombs, huge thread counts, nested config."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image, PngImagePlugin

from diffusers_tui.commands import main
from diffusers_tui.commands.common import say

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: The same, less the carriage return that the progress bar itself draws with.
NOT_OURS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
ESCAPES = ["\x1b]0;pwned\x07", "\x1b[2J", "\x9b31m", "\x07", "\r", "\x1bc"]


def _png(path, text: str, key="diffusers-tui"):
    info = PngImagePlugin.PngInfo()
    info.add_itxt(key, text)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


@settings(max_examples=60, deadline=None)
@given(text=st.one_of(st.text(), st.lists(st.one_of(st.sampled_from(ESCAPES), st.text(max_size=5))).map("".join)))
def test_say_never_prints_a_control_character(text):
    import io
    import contextlib

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        say(text)
    assert not CONTROL.search(out.getvalue())


@pytest.mark.parametrize("parameters", [
    "a prompt\x1b]0;pwned\x07\nNegative prompt: \x1b[2J\nSteps: 3, Sampler: Euler\x1bc, Seed: 1, Model: \x9b31m",
    "Steps: x\x1b[2J, CFG scale: \x07, Size: \x1b]0;t\x07",
])
def test_a_hostile_a1111_recipe_prints_no_escape(tmp_path, capsys, parameters):
    path = _png(tmp_path / "a1111.png", parameters, key="parameters")
    main(["generate", "--from", str(path), "--outputs", str(tmp_path / "out"), "--steps", "1"])
    captured = capsys.readouterr()
    assert not NOT_OURS.search(captured.err + captured.out), captured.err
    assert "\\x1b" in captured.err  # shown, escaped


def test_a_hostile_recipe_prompt_prints_no_escape_and_names_the_field(tmp_path, capsys):
    path = _png(tmp_path / "ours.png", json.dumps({"request": {"prompt": ["\x1b]0;pwned\x07"], "steps": 3}}))
    assert main(["generate", "--from", str(path), "--outputs", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "its recipe's prompt: must be text" in err and not CONTROL.search(err)


def test_nested_json_in_from_is_one_clear_line(tmp_path, capsys):
    path = _png(tmp_path / "deep.png", '{"request": ' + "[" * 200_000 + "]" * 200_000 + "}")
    assert main(["generate", "--from", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "damaged" in err and "unexpected" not in err


def test_from_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "recipe.png"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "diffusers_tui", "generate", "--from", str(fifo)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "is a FIFO, not a regular file" in done.stderr


@pytest.mark.parametrize("how", ["flag", "environment", "config"])
def test_a_thread_count_above_the_cores_is_refused_with_the_range(tmp_path, capsys, monkeypatch, how):
    cores = os.cpu_count()
    if how == "flag":
        with pytest.raises(SystemExit):
            main(["--threads", "10000", "config"])
        assert f"10000 is outside 1 to {cores}" in capsys.readouterr().err
        return
    if how == "environment":
        monkeypatch.setenv("DIFFUSERS_TUI_THREADS", "100000000")
    else:
        config = tmp_path / "config.toml"
        config.write_text("threads = 100000000\n")
        monkeypatch.setenv("DIFFUSERS_TUI_CONFIG", str(config))
        monkeypatch.delenv("DIFFUSERS_TUI_THREADS")  # the tests' own setting would outrank the file
    assert main(["config"]) == 0
    captured = capsys.readouterr()
    assert f"100000000 is outside 1 to {cores}" in captured.err
    assert re.search(r"^threads\s+-\s+default$", captured.out, re.M)


@pytest.mark.parametrize("content", ["device", "nested", "fifo", "huge"])
def test_a_config_that_is_not_a_config_is_named_and_ignored(tmp_path, capsys, monkeypatch, content):
    path = tmp_path / "config.toml"
    if content == "device":
        path = "/dev/zero"
    elif content == "nested":
        path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    elif content == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("# " + "x" * (2 << 20) + "\n")
    monkeypatch.setenv("DIFFUSERS_TUI_CONFIG", str(path))
    assert main(["config"]) == 0
    err = capsys.readouterr().err
    assert "using the defaults" in err and {"device": "not a regular file", "nested": "too deeply",
                                             "fifo": "FIFO", "huge": "larger than"}[content] in err
