"""The engine never imports the UI libraries, even after loading and running a model."""

import subprocess
import sys
import textwrap

UI_MODULES = ("textual", "rich", "rich_pixels")


def _modules_after(code: str) -> set[str]:
    script = textwrap.dedent(code) + textwrap.dedent("""
        import sys
        print(" ".join(sorted({name.split('.')[0] for name in sys.modules})))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_import_pulls_in_no_ui_library():
    loaded = _modules_after("""
        import diffusers_tui.engine
        import diffusers_tui.engine.engine, diffusers_tui.engine.runner, diffusers_tui.engine.sources
        import diffusers_tui.engine.schedulers, diffusers_tui.engine.preview, diffusers_tui.engine.outputs
        import diffusers_tui.engine.history, diffusers_tui.engine.export, diffusers_tui.settings
    """)
    assert "torch" in loaded  # the runner really was imported
    assert not loaded & set(UI_MODULES)


def test_engine_run_pulls_in_no_ui_library():
    loaded = _modules_after("""
        from diffusers_tui.engine.engine import Engine
        from diffusers_tui.engine.request import GenerationRequest
        Engine().run(GenerationRequest(prompt="a red circle on a blue background", steps=2))
    """)
    assert "diffusers" in loaded
    assert not loaded & set(UI_MODULES)


def test_request_module_does_not_import_torch():
    loaded = _modules_after("import diffusers_tui.engine.request, diffusers_tui.engine")
    assert "torch" not in loaded and "diffusers" not in loaded
