"""Property tests: any request fields and any command line either work or get a clear error."""

from __future__ import annotations

import contextlib
import io
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from diffusers_tui import commands as cli
from diffusers_tui.engine.sampling import registry as schedulers
from diffusers_tui.engine.errors import RequestError, UserFacingError
from diffusers_tui.engine.request import MAX_SEED, GenerationRequest

SCHEDULERS = schedulers.names()
_ANY_TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "\udcff", "\x00", "x" * 10_001, "../../etc"])
_ANYTHING = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
             | _ANY_TEXT | st.binary(max_size=8) | st.lists(st.integers(), max_size=2))
_FIELD_VALUES = {
    "prompt": _ANY_TEXT, "negative_prompt": _ANY_TEXT, "model": _ANY_TEXT,
    "mode": st.sampled_from(["auto", "text-to-image", "unet", "img2img"]) | _ANYTHING,
    "scheduler": st.none() | st.sampled_from(SCHEDULERS) | _ANY_TEXT,
    "steps": st.integers(-5, 1005) | _ANYTHING, "guidance": st.floats(-5, 60) | _ANYTHING,
    "seed": st.integers(-1, MAX_SEED + 1) | _ANYTHING,
    "width": st.none() | st.integers(-8, 5000) | _ANYTHING, "height": st.none() | st.integers(-8, 5000) | _ANYTHING,
    "preview": st.sampled_from(["x0", "noisy"]) | _ANYTHING, "preview_every": st.integers(-1, 1001) | _ANYTHING,
    "preview_method": st.sampled_from(["auto", "linear", "vae", "none"]) | _ANYTHING,
    "init_image": st.none() | _ANY_TEXT | _ANYTHING, "strength": st.none() | st.floats(-1, 2) | _ANYTHING,
    "hires_scale": st.none() | st.floats(0, 5) | _ANYTHING, "hires_steps": st.integers(-1, 1001) | _ANYTHING,
    "hires_upscaler": st.sampled_from(["Latent", "lanczos", "Latent (bicubic)", "ESRGAN"]) | _ANYTHING,
    "batch_size": st.integers(-1, 20) | _ANYTHING, "batch_count": st.integers(-1, 120) | _ANYTHING,
    "pag_scale": st.floats(-1, 60) | _ANYTHING,
}
FIELD_NAMES = {f.name for f in fields(GenerationRequest)}


@settings(max_examples=500, deadline=None)
@given(st.fixed_dictionaries({}, optional=_FIELD_VALUES))
def test_any_request_fields_are_accepted_or_refused_naming_the_field(values):
    try:
        GenerationRequest(**values)
    except RequestError as error:
        assert error.field in FIELD_NAMES and str(error).startswith(f"{error.field}: ")


# Valid requests, small enough to run: each must run to its end, or be refused clearly.
_RUNNABLE = st.fixed_dictionaries({
    "prompt": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                      max_size=80).filter(str.strip),
    "negative_prompt": st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20),
    "scheduler": st.none() | st.sampled_from(SCHEDULERS),
    "steps": st.integers(1, 6),
    "guidance": st.floats(0, 50),
    "seed": st.integers(0, MAX_SEED),
    "width": st.none() | st.sampled_from([8, 16, 24, 32]),
    "height": st.none() | st.sampled_from([8, 16, 24, 32]),
    "preview": st.sampled_from(["x0", "noisy"]),
    "preview_every": st.integers(1, 4),
    "preview_method": st.sampled_from(["auto", "linear", "vae", "none"]),
    "batch_count": st.integers(1, 2),
    "pag_scale": st.sampled_from([0.0, 1.5]),
    "hires_scale": st.sampled_from([None, None, 2.0]),
    "hires_steps": st.integers(0, 2),
})


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=_RUNNABLE, which=st.sampled_from(["tiny_sd", "tiny_ddpm"]))
def test_valid_requests_run_to_the_end_or_are_refused_clearly(engine, request, values, which):
    model = str(request.getfixturevalue(which))
    run = GenerationRequest(model=model, **values)
    try:
        result = engine.run(run)
    except UserFacingError as error:
        assert isinstance(error, RequestError) or "scheduler" in str(error), error
        event(f"refused: {str(error).split(':')[0]}")
        return
    event("ran")
    assert result.image is not None and result.stopped is None
    assert result.model_calls == result.total_calls > 0


#: option: (values that should work, values that must be refused); most draws are valid,
#: so that a good share of command lines gets as far as running.
_OPTIONS = {
    "--steps": (["1", "2", "3"], ["0", "-1", "abc", "1e3", "1001", "99999999999999999999", ""]),
    "--guidance": (["0", "7.5", "50"], ["-1", "nan", "inf", "1e400", "x", "50.0001"]),
    "--seed": (["0", "42", "random", str(MAX_SEED)], ["-1", str(MAX_SEED + 1), "0x10", "1.5"]),
    "--size": (["16", "16x32", "32x16"], ["0", "17", "8x", "x", "4096x4096x1", "-16", "huge", "99999"]),
    "--scheduler": (["Euler", "euler A", "DPM++ 2M Karras", "DDIM", "Heun"], ["", "Nope", "DPM++ 2M;rm -rf /"]),
    "--device": (["cpu", "auto"], ["cuda", "cuda:7", "tpu", ""]),
    "--dtype": (["float32", "auto", "bfloat16"], ["int8", ""]),
    "--preview": (["x0", "noisy"], ["both"]),
    "--preview-method": (["auto", "linear", "none", "vae"], ["magic"]),
    "--save-every": (["1", "2"], ["0", "many"]),
    "--threads": (["1"], ["0", "-3", "lots"]),
    "--offload": (["none"], ["model", "disk"]),
    "--vae": (["full", "sliced", "tiled"], ["huge", ""]),
    "--negative": (["blurry", "", "ünïcödé ☃"], ["\udcff", "x" * 10_001]),
}
_COMPARE_OPTIONS = {
    "--schedulers": (["Euler,DDIM", "Euler", "DPM++ 2M Karras,Euler a"], ["", ",", "Euler,Nope"]),
    "--steps": (["2", "2,3"], ["", "0", "2,x", "1,-1"]),
    "--reference": (["DDIM:3"], ["DDIM", ":3", "Nope:2", "DDIM:0"]),
    "--seed": _OPTIONS["--seed"], "--guidance": _OPTIONS["--guidance"], "--size": _OPTIONS["--size"],
}
_PROMPTS = (["a red circle", "ünïcödé ☃", "../../etc/passwd"], ["", " ", "\udcff", "x" * 10_001])


def _value(draw, choices: tuple[list[str], list[str]]) -> str:
    valid, refused = choices
    return draw(st.sampled_from(refused if draw(st.integers(0, 9)) == 0 else valid))


@st.composite
def command_lines(draw, tiny_models: dict[str, str]) -> list[str]:
    command = draw(st.sampled_from(["generate", "unet", "compare", "schedulers", "models"]))
    argv = [command]
    if command in ("generate", "compare"):
        argv.append(_value(draw, _PROMPTS))
    options = {"compare": _COMPARE_OPTIONS, "models": {},
               "unet": {k: v for k, v in _OPTIONS.items() if k not in ("--guidance", "--negative")},
               "schedulers": {key: _OPTIONS[key] for key in ("--device", "--dtype")}}.get(command, _OPTIONS)
    if command == "compare":
        argv += ["--schedulers", _value(draw, options["--schedulers"])]
    for option in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=3)) if options else ():
        if option not in argv:
            argv += [option, _value(draw, options[option])]
    if command in ("generate", "unet") and "--steps" not in argv:
        argv += ["--steps", "2"]  # the unet command's default (1000) is too long for a test
    if command != "models":
        fitting = [tiny_models["ddpm"]] if command == "unet" else list(tiny_models.values())
        models = (fitting, ["nope/none", "", "../../..", "x" * 5000, "\udcff", tiny_models["sd"]])
        argv += ["--model", _value(draw, models)]
    if command != "models" and draw(st.booleans()):
        argv.append("--allow-pickle")
    return argv


@pytest.fixture(scope="module")
def tiny_models(tiny_sd, tiny_ddpm) -> dict[str, str]:
    return {"sd": str(tiny_sd), "ddpm": str(tiny_ddpm)}


@pytest.mark.slow
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_command_line_ends_in_a_result_or_one_line_of_error(tiny_models, tmp_path, data):
    argv = ["--outputs", str(tmp_path / "out"), *data.draw(command_lines(tiny_models))]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = cli.main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            status = exit_.code
    errors = stderr.getvalue()
    event(f"{argv[2]} exit {status}")  # --hypothesis-show-statistics: how many ran, how many were refused
    assert "Traceback" not in errors and "unexpected error" not in errors, errors
    assert status in (0, 1, 2), (status, errors)
    if status:
        assert "error:" in errors.splitlines()[-1], errors
