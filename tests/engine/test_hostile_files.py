"""Files from elsewhere: hostile indexes and recipes, FIFOs, pixel bombs, full disks, killed saves, shared folders.

Each test here failed on the code before the hardening (see the README's Guarantees).
"""

import errno
import json
import os
import struct
import time
import zlib

import pytest
from PIL import Image, PngImagePlugin

from diffusers_tui.engine import Engine
from diffusers_tui.engine.errors import OutputError, RequestError, UnreadableFileError
from diffusers_tui.engine.files import history, outputs, reading, untrusted, upkeep
from diffusers_tui.engine.request import GenerationRequest, GenerationResult

from tests.frames import recorded_step


def _result(prompt="a red circle", seed=1):
    request = GenerationRequest(prompt=prompt, scheduler="Euler", steps=7, seed=seed, width=16, height=16)
    recipe = {"model": "demo", "scheduler_name": "Euler", "scheduler_class": "EulerDiscreteScheduler",
              "scheduler_config": {}, "width": 16, "height": 16, "mode": "text-to-image"}
    return GenerationResult(request, Image.new("RGB", (16, 16)), False, 1.0, 7, 7, None, recipe)


def _png_with_recipe(path, request_fields: dict | str, size=(8, 8)):
    info = PngImagePlugin.PngInfo()
    text = request_fields if isinstance(request_fields, str) else json.dumps({"request": request_fields})
    info.add_itxt("diffusers-tui", text)
    Image.new("RGB", size).save(path, pnginfo=info)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _giant_png(path, width: int, height: int, text: str) -> None:
    """A PNG that declares width x height pixels, with a recipe, in a few hundred bytes (no real pixels)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    recipe = b"diffusers-tui\x00\x00\x00\x00\x00" + text.encode()
    body = zlib.compress(b"\x00" * 1024)
    path.write_bytes(untrusted.PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"iTXt", recipe)
                     + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


# ----- hostile index lines and recipes -----
@pytest.mark.parametrize("line", [
    json.dumps({"path": "2026-01-01/a\u0000b.png", "prompt": "nul"}),
    json.dumps({"path": "c", "kind": "comparison", "schedulers": "Euler", "steps": [1]}),
    json.dumps({"path": "c", "kind": "comparison", "schedulers": [1, 2]}),
    json.dumps({"path": "a.png", "prompt": ["a", "list"]}),
    json.dumps({"path": "a.png", "prompt": "x", "seed": "seven"}),
    json.dumps({"path": "a.png", "prompt": "x", "steps": {"n": 1}}),
    "[" * 100_000,
    json.dumps([1, 2]),
    "x" * (history.MAX_LINE_BYTES + 10),
])
def test_a_hostile_index_line_is_skipped_and_the_rest_listed(tmp_path, line):
    saved = outputs.save_result(_result(), tmp_path)
    with open(tmp_path / "index.jsonl", "a") as index:
        index.write(line + "\n")
    outputs.save_result(_result("a blue square", 2), tmp_path)
    found = history.read_history(tmp_path)
    assert [entry.prompt for entry in found.entries] == ["a blue square", "a red circle"]
    assert found.entries[1].path == saved.resolve() and found.skipped == 1


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085", "\r", "\x0b", "\x0c", "\x1c"])
def test_prompts_with_unicode_line_breaks_stay_in_history(tmp_path, separator):
    prompt = f"a red{separator}circle"
    outputs.save_result(_result(prompt), tmp_path)
    outputs.save_result(_result("after", 2), tmp_path)
    found = history.read_history(tmp_path)
    assert [entry.prompt for entry in found.entries] == ["after", prompt] and found.skipped == 0


@pytest.mark.parametrize("field, value", [("prompt", ["a", "list"]), ("prompt", 7), ("steps", "20"),
                                          ("seed", -1), ("guidance", "x"), ("width", 13)])
def test_a_recipe_field_of_the_wrong_kind_is_one_error_naming_it(tmp_path, field, value):
    path = _png_with_recipe(tmp_path / "r.png", {"prompt": "a red circle", field: value})
    with pytest.raises(RequestError) as caught:
        reading.recipe_from_png(path)
    assert caught.value.field == "from" and field in str(caught.value) and "r.png" in str(caught.value)


def test_deeply_nested_recipe_json_is_a_damaged_recipe_not_a_recursion_error(tmp_path):
    path = _png_with_recipe(tmp_path / "deep.png", '{"request": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(RequestError, match="damaged"):
        reading.recipe_from_png(path)


def test_a_recipe_is_read_without_decoding_pixels(tmp_path):
    """144 Mpx and 400 Mpx declared in a few hundred bytes: the recipe comes back, no pixel is decoded."""
    for side in (12_000, 20_000):
        path = tmp_path / f"giant-{side}.png"
        _giant_png(path, side, side, json.dumps({"request": {"prompt": "a red circle", "steps": 9}}))
        recipe = reading.recipe_from_png(path)
        assert recipe.fields == {"prompt": "a red circle", "steps": 9}
        with pytest.raises(UnreadableFileError, match="too large to show"):
            untrusted.open_picture(path)


def test_a_zip_bomb_text_chunk_is_bounded(tmp_path):
    bomb = zlib.compress(b"a" * (untrusted.MAX_TEXT_CHUNK * 4))
    path = tmp_path / "bomb.png"
    data = b"parameters\x00\x01\x00\x00\x00" + bomb
    path.write_bytes(untrusted.PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
                     + _chunk(b"iTXt", data) + _chunk(b"IEND", b""))
    assert untrusted.png_text(path) == {}


# ----- FIFOs and devices -----
@pytest.fixture()
def fifo(tmp_path):
    path = tmp_path / "fifo.png"
    os.mkfifo(path)
    return path


def test_a_fifo_given_as_a_recipe_is_refused_at_once(fifo):
    with pytest.raises(RequestError, match="is a FIFO, not a regular file"):
        reading.recipe_from_png(fifo)
    with pytest.raises(UnreadableFileError, match="FIFO"):
        untrusted.open_picture(fifo)
    with pytest.raises(UnreadableFileError, match="device"):
        untrusted.read_bounded("/dev/zero", 1024)


def test_an_index_that_is_a_fifo_is_a_problem_named_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "index.jsonl")
    found = history.read_history(tmp_path)
    assert found.entries == [] and "FIFO" in found.problem


def test_history_is_read_from_the_end_a_page_at_a_time(tmp_path, monkeypatch):
    """The first page needs the index's last lines only: a 50 MB index shows its newest rows at once."""
    line = json.dumps({"path": "2026-01-01/00001-a.png", "prompt": "p" * 300, "steps": 20, "seed": 1})
    with open(tmp_path / "index.jsonl", "w") as index:
        for number in range(150_000):
            index.write(line.replace('"seed": 1', f'"seed": {number}') + "\n")
    parsed = []
    real_entry = history._entry
    monkeypatch.setattr(history, "_entry", lambda *args: parsed.append(1) or real_entry(*args))
    pages = history.history_pages(tmp_path, page_size=200)
    first = next(pages)
    assert [entry.seed for entry in first.entries[:3]] == [149_999, 149_998, 149_997]
    assert len(parsed) == 200  # no line beyond the first page was parsed
    assert sum(len(page.entries) for page in pages) == 150_000 - 200


# ----- the index written whole -----
def test_a_full_disk_mid_line_leaves_the_index_whole_and_says_so(tmp_path, monkeypatch):
    outputs.save_result(_result("kept"), tmp_path)
    before = (tmp_path / "index.jsonl").read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if real_write(fd, data[: len(data) // 2]) and len(data) > 40:
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OutputError, match="not its line in index.jsonl .No space left"):
        outputs.save_result(_result("lost", 2), tmp_path)
    monkeypatch.undo()
    assert (tmp_path / "index.jsonl").read_bytes() == before
    outputs.save_result(_result("after", 3), tmp_path)
    assert [entry.prompt for entry in history.read_history(tmp_path).entries][:1] == ["after"]
    # the save that lost its line is finished by the next start's tidy
    found = upkeep.tidy(tmp_path, now=time.time() + upkeep.STALE_AFTER_S + 1)
    assert any("no index line" in line for line in found)
    assert [entry.prompt for entry in history.read_history(tmp_path).entries] == ["lost", "after", "kept"]


def test_short_writes_are_continued(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:7]))
    outputs.append_index(tmp_path, {"path": "a.png", "prompt": "x" * 100})
    monkeypatch.undo()
    assert json.loads((tmp_path / "index.jsonl").read_text())["prompt"] == "x" * 100


def test_a_torn_last_line_does_not_swallow_the_next(tmp_path):
    (tmp_path / "index.jsonl").write_text('{"path": "a.png", "prom')
    outputs.save_result(_result("whole"), tmp_path)
    found = history.read_history(tmp_path)
    assert [entry.prompt for entry in found.entries] == ["whole"] and found.skipped == 1


# ----- debris of interrupted saves -----
def test_stale_temporary_files_are_removed_and_fresh_ones_kept(tmp_path):
    day = tmp_path / "2026-12-01"
    run = day / "00001-euler-20-1"
    run.mkdir(parents=True)
    stale = [tmp_path / ".saving-a.png", day / ".saving-b.png", run / ".saving-c.png"]
    fresh = day / ".saving-d.png"
    for path in [*stale, fresh]:
        path.write_bytes(b"")
    old = time.time() - upkeep.STALE_AFTER_S - 60
    for path in stale:
        os.utime(path, (old, old))
    found = upkeep.tidy(tmp_path)
    assert not any(path.exists() for path in stale) and fresh.exists()
    assert found == [f"removed 3 temporary files left by interrupted saves in {tmp_path}"]


def test_a_save_killed_among_its_steps_is_finished_and_told_at_the_next_start(tmp_path, monkeypatch):
    snapshots = [recorded_step(step, 5) for step in range(1, 6)]
    real = outputs.write_into_own_folder
    written = []

    def killed_after_three(image, path):
        if len(written) == 3:
            raise SystemExit("killed")  # stands for SIGKILL: nothing after this runs
        written.append(path)
        real(image, path)

    monkeypatch.setattr(outputs, "write_into_own_folder", killed_after_three)
    monkeypatch.setattr(outputs, "append_index", lambda *args: (_ for _ in ()).throw(SystemExit("killed")))
    with pytest.raises(SystemExit):
        outputs.save_result(_result(), tmp_path, snapshots)
    monkeypatch.undo()
    assert history.read_history(tmp_path).entries == []
    found = upkeep.tidy(tmp_path, now=time.time() + upkeep.STALE_AFTER_S + 1)
    assert found == ["00001-euler-7-1.png: image saved, 3 of 5 step snapshots, no index line (the save was "
                     "interrupted); its history line is added now"]
    entry = history.read_history(tmp_path).entries[0]
    assert entry.prompt == "a red circle" and entry.path.name == "00001-euler-7-1.png"
    assert upkeep.tidy(tmp_path) == []  # told once


def test_ctrl_c_among_the_steps_still_writes_the_index_line(tmp_path, monkeypatch):
    real = outputs.write_into_own_folder
    calls = []

    def interrupted(image, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(image, path)

    monkeypatch.setattr(outputs, "write_into_own_folder", interrupted)
    with pytest.raises(KeyboardInterrupt):
        outputs.save_result(_result(), tmp_path, [recorded_step(step, 4) for step in range(1, 5)])
    line = json.loads((tmp_path / "index.jsonl").read_text())
    assert line["interrupted"] == "1 of 4 step snapshots"
    assert not list(tmp_path.rglob(".*.unfinished"))


def test_a_full_disk_among_the_steps_leaves_no_empty_temporary_file(tmp_path, monkeypatch):
    def full(self, handle, format=None, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(OSError):
        outputs.write_into_own_folder(Image.new("RGB", (4, 4)), run / "step_0001.png")
    assert list(run.iterdir()) == []


# ----- permissions and the rescue folder -----
def test_saved_pictures_and_the_index_share_the_umask_mode(tmp_path):
    old = os.umask(0o002)
    try:
        outputs.file_mode.cache_clear()
        path = outputs.save_result(_result(), tmp_path)
        assert oct(path.stat().st_mode & 0o777) == oct(0o664)
        assert oct((tmp_path / "index.jsonl").stat().st_mode & 0o777) == oct(0o664)
    finally:
        os.umask(old)
        outputs.file_mode.cache_clear()


def test_the_index_is_never_appended_through_a_symlink(tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "index.jsonl").symlink_to(target)
    with pytest.raises(OutputError, match="not its line in index.jsonl"):
        outputs.save_result(_result(), folder)
    assert target.read_text() == "precious\n"


def test_the_rescue_folder_is_private(tmp_path):
    fresh = Engine.private_folder(tmp_path / "unsaved")
    assert oct(fresh.stat().st_mode & 0o777) == oct(0o700)
    opened = tmp_path / "opened"
    opened.mkdir(mode=0o777)
    os.chmod(opened, 0o777)
    assert Engine.private_folder(opened).stat().st_mode & 0o077 == 0
    planted = tmp_path / "planted"
    planted.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(OutputError, match="not a folder"):
        Engine.private_folder(planted)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder owned by another user")
def test_a_rescue_folder_owned_by_someone_else_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    with pytest.raises(OutputError, match="belongs to another user"):
        Engine.private_folder(theirs)
