"""Fixtures of the app's pilot tests."""

import pytest

from diffusers_tui.engine import Engine
from diffusers_tui.ui.app import DiffusersTuiApp


@pytest.fixture(scope="session")
def engine_for():
    """An Engine per model name, kept for the session: the app is handed its engine, so a model loaded
    once (the demo's load is most of a pilot test's time) serves every app that opens it."""
    engines: dict[str, Engine] = {}

    def get(model: str) -> Engine:
        return engines.setdefault(str(model), Engine())
    return get


@pytest.fixture()
def make_app(tmp_path, engine_for):
    """An app on `model` that saves into tmp_path/out, with the built-in default settings."""
    def make(model="demo"):
        return DiffusersTuiApp(engine_for(model), outputs_dir=str(tmp_path / "out"), model=model)
    return make
