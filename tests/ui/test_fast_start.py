"""The app's start path imports neither torch nor diffusers (they load in the worker)."""

import subprocess
import sys


def test_app_and_cli_import_without_torch_or_diffusers():
    script = ("import sys, diffusers_tui.cli, diffusers_tui.ui.app, diffusers_tui.engine.engine; "
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                check=True).stdout.split())
    assert "textual" in loaded
    assert not loaded & {"torch", "diffusers", "transformers"}
