"""The engine never imports the UI libraries, even after loading and running a model."""

import pkgutil
import subprocess
import sys
import textwrap

import pytest

import diffusers_tui.engine

UI_MODULES = ("textual", "rich", "rich_pixels")


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print(" ".join(sorted({name.split('.')[0] for name in sys.modules})))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def engine_modules() -> list[str]:
    """Every module of the engine package, found on disk (a new one is covered without listing it)."""
    return sorted(info.name for info in pkgutil.walk_packages(diffusers_tui.engine.__path__, "diffusers_tui.engine."))


def test_engine_import_pulls_in_no_ui_library():
    modules = engine_modules()
    assert "diffusers_tui.engine.sampling.runner" in modules and "diffusers_tui.engine.files.outputs" in modules
    loaded = _modules_after("import diffusers_tui.settings\n" + "\n".join(f"import {name}" for name in modules))
    assert "torch" in loaded  # the runner really was imported
    assert not loaded & set(UI_MODULES)


@pytest.mark.slow
def test_engine_run_pulls_in_no_ui_library():
    loaded = _modules_after("""
        from diffusers_tui.engine import Engine
        from diffusers_tui.engine.request import GenerationRequest
        Engine().run(GenerationRequest(prompt="a red circle on a blue background", steps=2))
    """)
    assert "diffusers" in loaded
    assert not loaded & set(UI_MODULES)


def test_request_module_does_not_import_torch():
    loaded = _modules_after("import diffusers_tui.engine.request, diffusers_tui.engine")
    assert "torch" not in loaded and "diffusers" not in loaded
