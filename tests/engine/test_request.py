"""GenerationRequest validates every field at construction and names the bad one."""

import pytest

from diffusers_tui.engine.errors import RequestError
from diffusers_tui.engine.request import MAX_SEED, GenerationRequest


@pytest.mark.parametrize("field, value, words", [
    ("steps", 0, "outside 1 to 1000"),
    ("steps", -5, "outside"),
    ("steps", "ten", "not a whole number"),
    ("steps", 2.5, "not a whole number"),
    ("guidance", -1.0, "outside 0 to 50"),
    ("guidance", 1e9, "outside"),
    ("seed", -1, "outside 0 to"),
    ("seed", MAX_SEED + 1, "outside"),
    ("width", 100, "multiple of 8"),
    ("height", 100_000, "outside 8 to 4096"),
    ("prompt", "x" * 20_000, "limit is 10000"),
    ("prompt", "a\x00b", "NUL"),
    ("model", "", "model name"),
    ("mode", "video", "not one of"),
    ("preview", "both", "x0 or noisy"),
    ("preview_every", 0, "outside"),
    ("preview_method", "tiny", "not one of auto, latent, taesd, vae, none"),
])
def test_bad_values_name_the_field_and_range(field, value, words):
    with pytest.raises(RequestError) as caught:
        GenerationRequest(**{field: value})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}:")
    assert words in str(caught.value)


def test_valid_extremes_are_accepted():
    request = GenerationRequest(seed=MAX_SEED, steps=1000, guidance=0.0, width=4096, height=8)
    assert request.seed == MAX_SEED


def test_round_trip_through_dict_ignores_unknown_keys():
    request = GenerationRequest(prompt="p", negative_prompt="n", scheduler="Euler", steps=7, seed=3, width=64)
    data = request.to_dict() | {"added_in_a_later_version": 1}
    assert GenerationRequest.from_dict(data) == request


def test_requests_are_frozen():
    request = GenerationRequest()
    with pytest.raises(AttributeError):
        request.steps = 3
