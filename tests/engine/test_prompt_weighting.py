"""A1111 prompt syntax: parsed as A1111 parses it, applied through compel, and said when it is not."""

import numpy as np
import pytest

from diffusers_tui.engine import GenerationRequest
from diffusers_tui.engine.sampling import prompt_weighting


@pytest.mark.parametrize("text, runs", [
    ("a (red) circle", [("a ", 1.0), ("red", 1.1), (" circle", 1.0)]),
    ("((red))", [("red", pytest.approx(1.21))]),
    ("[blue] sky", [("blue", pytest.approx(1 / 1.1)), (" sky", 1.0)]),
    ("(red:1.5) and (blue:0.5)", [("red", 1.5), (" and ", 1.0), ("blue", 0.5)]),
    ("(a [b]:2)", [("a ", 2.0), ("b", pytest.approx(2 / 1.1))]),
    (r"a \(literal\) bracket", [("a (literal) bracket", 1.0)]),
    ("one BREAK two", [("one", 1.0), ("BREAK", -1), ("two", 1.0)]),
    ("unclosed (red", [("unclosed ", 1.0), ("red", pytest.approx(1.1))]),
])
def test_emphasis_is_read_as_a1111_reads_it(text, runs):
    assert prompt_weighting.attention_runs(text) == runs


def test_compel_gets_the_same_weights_and_break_becomes_separately_encoded_chunks():
    from compel import Compel

    text, removed = prompt_weighting.to_compel("a ((red)) circle BREAK on a [blue] background <lora:shiny:0.8>")
    assert removed == ["<lora:shiny:0.8>"]
    parsed = Compel.parse_prompt_string(text)
    chunks = [[(fragment.text, round(fragment.weight, 3)) for fragment in prompt.children] for prompt in parsed.prompts]
    assert chunks == [[("a", 1.0), ("red", 1.21), ("circle", 1.0)],
                      [("on a", 1.0), ("blue", 0.909), ("background", 1.0)]]


def test_emphasis_changes_the_picture_and_weight_one_does_not(engine):
    def pixels(prompt):
        result = engine.run(GenerationRequest(prompt=prompt, model="demo", steps=10, seed=3, preview_method="none"))
        assert result.request.prompt == prompt  # stored as typed
        return np.asarray(result.image, dtype=float), result.recipe

    plain, plain_recipe = pixels("a red circle on a blue background")
    same, _ = pixels("a (red:1.0) circle on a blue background")
    weighted, recipe = pixels("a (red:1.6) circle on a (blue:0.5) background")
    assert np.array_equal(plain, same) and "compel" not in plain_recipe
    assert np.abs(plain - weighted).mean() > 5
    assert recipe["compel"] == {"wrapper": "CompelForSD", "prompt": "a (red)1.6 circle on a (blue)0.5 background",
                                "negative_prompt": ""}


def test_weights_are_plain_decimals_and_ones_compel_cannot_take_leave_the_prompt_as_typed_with_a_note():
    from compel import Compel

    # compel reads "(red)-5" as red at 0.9 and a word "5", "1.4e+206" as 1.4 and a word: such weights are refused.
    overflow = "(red:" + "9" * 400 + ")"  # A1111 reads the weight as float: inf
    nested = "(" * 4980 + "red" + ")" * 4980  # 1.1 ** 4980: past float32
    for text, shown_weight in (("a (red:-5) circle", "-5"), (overflow, "inf"), (nested, "1.36638e+206")):
        assert f"'red' at {shown_weight}" in prompt_weighting.syntax_note(text, "", "sd")
        assert not prompt_weighting.readable(text, "") and not prompt_weighting.readable("", text)
    # (red:-1) is a weight, not A1111's BREAK marker.
    assert prompt_weighting.to_compel("a (red:-1) circle")[0].startswith("a (red)-1")
    text = prompt_weighting.to_compel("a [[[red]]] circle (blue:0.000001)")[0]
    assert "e" not in text.replace("circle", "").replace("red", "").replace("blue", "")
    fragments = Compel.parse_prompt_string(text).prompts[0].children
    weights = [round(f.weight, 6) for f in fragments if f.text in ("red", "blue")]
    assert weights == [round(1 / 1.1**3, 6), 0.000001]


def test_the_note_says_whether_the_syntax_took_effect():
    assert prompt_weighting.syntax_note("a red circle", "", "sd") is None
    assert "applied through compel" in prompt_weighting.syntax_note("a (red:1.2) circle", "", "sd")
    assert "<lora:x:1> loaded as LoRAs" in prompt_weighting.syntax_note("a circle <lora:x:1>", "", "sdxl")
    assert "<hypernet:h:1> not applied" in prompt_weighting.syntax_note("a circle <hypernet:h:1>", "", "sdxl")
    assert "is not applied on this model" in prompt_weighting.syntax_note("a (red) circle", "", None)


def test_text_compels_parser_refuses_runs_as_typed_with_a_note(engine, monkeypatch):
    # A form feed stopped compel's parser (found by the property test): the prompt still runs.
    assert prompt_weighting.to_compel("0\x0c(red)")[0] == "0 (red)1.1"
    result = engine.run(GenerationRequest(prompt="0\x0c0", negative_prompt=")", model="demo", steps=2, seed=1,
                                          preview_method="none"))
    assert result.image is not None and result.request.prompt == "0\x0c0"
    from compel import Compel

    def refuse(text):
        raise ValueError("Expected end of text")

    monkeypatch.setattr(Compel, "parse_prompt_string", staticmethod(refuse))
    pipe = engine.loaded_model("demo").pipeline
    assert not prompt_weighting.applies(pipe, "a (red) circle", "")
    assert "could not be read here" in prompt_weighting.syntax_note("a (red) circle", "", "sd")
