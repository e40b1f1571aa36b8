"""The demo's closed vocabulary: unknown words named with what it knows; other models have none."""

from diffusers_tui.engine import describe_vocabulary, prompt_note


def test_unknown_words_are_named_with_the_words_the_demo_knows(engine):
    summary = engine.load("demo")
    note = prompt_note("A yellow triangle on a BLACK background, photorealistic", summary)
    assert "'black', 'photorealistic'" in note and "'yellow'" not in note
    assert describe_vocabulary(summary) in note
    assert prompt_note("a white square on a green background", summary) is None


def test_models_that_read_any_text_get_no_note(engine, tiny_sd):
    summary = engine.load(str(tiny_sd))
    assert summary.vocabulary == () and prompt_note("zebra", summary) is None and describe_vocabulary(summary) == ""
