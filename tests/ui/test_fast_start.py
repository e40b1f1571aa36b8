"""The app's start path imports neither torch nor diffusers (they load in the worker)."""

import subprocess
import sys

import pytest


def test_app_and_cli_import_without_torch_or_diffusers():
    script = ("import sys, diffusers_tui.commands, diffusers_tui.ui.app, diffusers_tui.engine; "
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "textual" in loaded
    assert not loaded & {"torch", "diffusers", "transformers"}


MAIN_THREAD_IMPORTS = """
import asyncio, sys, threading

heavy = ("torch", "diffusers", "transformers")
imported_on_ui_thread = []


class Watch:
    \"\"\"Records heavy imports made by the main (UI) thread; finds nothing itself.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name in heavy and threading.current_thread() is threading.main_thread():
            imported_on_ui_thread.append(name)
        return None


sys.meta_path.insert(0, Watch())
from diffusers_tui.engine import Engine
from diffusers_tui.ui.app import DiffusersTuiApp


async def main():
    app = DiffusersTuiApp(Engine(), outputs_dir=sys.argv[1], model="demo")
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(600):
            if "native size" in str(app.query_one("#mode").render()):
                break
            await pilot.pause(0.05)
        print("loaded" if "native size" in str(app.query_one("#mode").render()) else "not loaded")
        await pilot.press("f3", "f5", "ctrl+r", "question_mark")
        await pilot.pause(0.2)
    print("ui-thread imports:", sorted(set(imported_on_ui_thread)))


asyncio.run(main())
"""


@pytest.mark.slow
def test_the_ui_thread_never_imports_torch_or_diffusers(tmp_path):
    """Mounting, loading the model and the first keys: torch and diffusers load only in workers."""
    done = subprocess.run([sys.executable, "-c", MAIN_THREAD_IMPORTS, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded" in done.stdout
    assert "ui-thread imports: []" in done.stdout, done.stdout
