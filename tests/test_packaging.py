"""The package says what it needs: the Python its code really requires, as vermin reads the code."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
#: vermin has no `python -m` entry point: its script sits beside this interpreter.
VERMIN = str(Path(sys.executable).with_name("vermin"))


def declared_minimum() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    match = re.fullmatch(r">=\s*(3\.\d+)", project["requires-python"])
    assert match, f"requires-python should be a plain minimum, not {project['requires-python']!r}"
    return match.group(1)


def test_requires_python_is_the_minimum_the_code_needs():
    minimum = declared_minimum()
    done = subprocess.run([VERMIN, "--no-tips", "--no-parse-comments", "-q",
                           "--violations", f"-t={minimum}-", str(ROOT / "diffusers_tui")],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"code needs more than Python {minimum}:\n{done.stdout}{done.stderr}"
    report = subprocess.run([VERMIN, "--no-tips", "--no-parse-comments",
                             str(ROOT / "diffusers_tui")], capture_output=True, text=True).stdout
    needed = re.search(r"Minimum required versions: (?:2\.\d+, )?(3\.\d+)", report)
    assert needed and needed.group(1) == minimum, f"declared {minimum}, the code needs {needed and needed.group(1)}"
