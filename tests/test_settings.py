"""Settings: defaults < config file < DIFFUSERS_TUI_* < command line, each with its source."""

import pytest

from diffusers_tui import settings
from diffusers_tui.commands import main


def _write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_each_layer_overrides_the_one_below_and_says_so(tmp_path):
    path = _write(tmp_path, 'steps = 30\nguidance = 7.5\nscheduler = "Euler a"\n\n[keys]\ngenerate = "f10"\n')
    found = settings.load({"steps": 12}, environ={"DIFFUSERS_TUI_GUIDANCE": "3", "DIFFUSERS_TUI_SIZE": "32x48"},
                          path=path)
    assert found["steps"] == 12 and found.sources["steps"] == "command line"
    assert found["guidance"] == 3.0 and found.sources["guidance"] == "env DIFFUSERS_TUI_GUIDANCE"
    assert found["size"] == "32x48" and found.sources["size"] == "env DIFFUSERS_TUI_SIZE"
    assert found["scheduler"] == "Euler a" and found.sources["scheduler"] == f"{path}, line 3"
    assert found["keys"] == {"generate": "f10"} and found.sources["keys"] == f"{path}, line 5"
    assert found["model"] == "demo" and found.sources["model"] == "default"
    assert not found.warnings


def test_a_broken_file_names_its_line_and_the_defaults_are_used(tmp_path):
    path = _write(tmp_path, 'steps = 30\nguidance = \n')
    found = settings.load({}, environ={}, path=path)
    assert found["steps"] == 20 and found.sources["steps"] == "default"
    assert len(found.warnings) == 1 and "line 2" in found.warnings[0] and "using the defaults" in found.warnings[0]


def test_a_bad_value_names_its_line_and_only_it_falls_back(tmp_path):
    path = _write(tmp_path, 'steps = 30\nguidance = 99\nscheduler = "Nope"\ncolour = "red"\n')
    found = settings.load({}, environ={"DIFFUSERS_TUI_STEPS": "many"}, path=path)
    assert found["steps"] == 30 and found["guidance"] == 5.0 and found["scheduler"] is None
    text = "\n".join(found.warnings)
    assert f"{path}, line 2: guidance: 99 is outside 0 to 50; using 5.0 instead" in text
    assert f"{path}, line 3: scheduler: unknown name 'Nope'" in text
    assert f"{path}, line 4: unknown setting 'colour'" in text
    assert "env DIFFUSERS_TUI_STEPS: steps: 'many' is not a whole number; using 30 instead" in text


def test_a_number_written_in_quotes_is_called_text_with_the_fix(tmp_path):
    path = _write(tmp_path, 'guidance = "7.5"\nsteps = "30"\n')
    found = settings.load({}, environ={}, path=path)
    assert found["guidance"] == 5.0 and found["steps"] == 20
    text = "\n".join(found.warnings)
    assert "line 1: guidance: '7.5' is text in quotes, not a number: write guidance = 7.5 without the quotes" in text
    assert "line 2: steps: '30' is text in quotes, not a whole number: write steps = 30" in text


def test_a_config_path_that_is_a_symlink_loop_is_warned_of(tmp_path):
    loop = tmp_path / "config.toml"
    loop.symlink_to(loop)
    found = settings.load({}, environ={}, path=loop)
    assert found["steps"] == 20
    assert len(found.warnings) == 1 and "symbolic link that leads to no file" in found.warnings[0]


def test_saving_keeps_what_else_the_file_holds_and_reads_back(tmp_path):
    path = _write(tmp_path, '# mine\ndevice = "cpu"\n\n[keys]\nhelp = "f1"\n')
    settings.save({"steps": 8, "scheduler": "DDIM", "size": ""}, path)
    found = settings.load({}, environ={}, path=path)
    assert (found["steps"], found["scheduler"], found["device"], found["keys"]) == (8, "DDIM", "cpu", {"help": "f1"})
    with pytest.raises(Exception, match="steps: 0 is outside"):
        settings.save({"steps": 0}, path)
    assert settings.load({}, environ={}, path=path)["steps"] == 8  # a refused save changes nothing


def test_config_command_prints_values_and_sources(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path, 'steps = 30\n')
    monkeypatch.setenv("DIFFUSERS_TUI_CONFIG", str(path))
    monkeypatch.setenv("DIFFUSERS_TUI_DTYPE", "float32")
    assert main(["--device", "cpu", "config"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"config file: {path}"
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[3:]}
    assert rows["steps"] == ["30", f"{path}, line 1"]
    assert rows["dtype"] == ["float32", "env DIFFUSERS_TUI_DTYPE"]
    assert rows["device"] == ["cpu", "command line"]
    assert rows["model"] == ["demo", "default"]


def test_generate_uses_the_configured_defaults(tiny_sd, tmp_path, monkeypatch, capsys):
    from diffusers_tui.engine.files import recipe as png_recipe

    path = _write(tmp_path, f'model = "{tiny_sd}"\nsteps = 3\nscheduler = "DDIM"\noutputs = "{tmp_path / "out"}"\n')
    monkeypatch.setenv("DIFFUSERS_TUI_CONFIG", str(path))
    assert main(["generate", "a square", "--seed", "5"]) == 0
    saved = list((tmp_path / "out").rglob("*.png"))
    recipe = png_recipe.read_recipe(saved[0])
    assert (recipe["request"]["steps"], recipe["request"]["scheduler"], recipe["model_path"]) == (3, "DDIM", str(tiny_sd))
    assert main(["generate", "a square", "--seed", "5", "--steps", "2", "--scheduler", "Euler"]) == 0
    assert "00002-euler-2-5.png" in {p.name for p in (tmp_path / "out").rglob("*.png")}
