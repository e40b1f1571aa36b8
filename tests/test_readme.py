"""The README's two set-up commands stay true: CI runs the second one verbatim."""

from pathlib import Path

ROOT = Path(__file__).parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```sh", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_opens_with_run_and_test_commands():
    run, test = _readme_commands()[:2]
    assert run.endswith(".venv/bin/diffusers-tui")  # the app, on the demo model
    assert test.endswith("python -m pytest -q")


def test_ci_runs_the_readme_test_command():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines
