"""Fixtures of the app's pilot tests."""

import pytest

from diffusers_tui.engine import Engine
from diffusers_tui.ui.app import DiffusersTuiApp


@pytest.fixture()
def make_app(tmp_path):
    """An app on `model` that saves into tmp_path/out, with the built-in default settings."""
    def make(model="demo"):
        return DiffusersTuiApp(Engine(), outputs_dir=str(tmp_path / "out"), model=model)
    return make
