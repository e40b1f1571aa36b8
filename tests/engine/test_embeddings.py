"""Textual-inversion embeddings: tiny ones made here (A1111's safetensors layout, two vectors; SDXL's clip_l and
clip_g), named by file stem in the prompt or the negative prompt, recorded as A1111 records them, re-run."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from diffusers_tui.engine import Engine, GenerationRequest, LoadOptions, RequestError
from diffusers_tui.engine.files import recipe as png_recipe


def _embedding(folder, name: str, width: int, vectors: int = 2, seed: int = 0, sdxl_width: int | None = None):
    """An embedding of `vectors` random vectors: A1111's {"emb_params": ...}, or SDXL's {"clip_l", "clip_g"}."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = ({"emb_params": torch.randn(vectors, width, generator=generator)} if sdxl_width is None else
               {"clip_l": torch.randn(vectors, width, generator=generator),
                "clip_g": torch.randn(vectors, sdxl_width, generator=generator)})
    save_file(tensors, folder / f"{name}.safetensors")
    return folder / f"{name}.safetensors"


def _width(model, encoder="text_encoder") -> int:
    return json.loads((model / encoder / "config.json").read_text())["hidden_size"]


def _pixels(result):
    return np.asarray(result.image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def embedded(tiny_sd, tmp_path_factory):
    folder = tmp_path_factory.mktemp("embeddings")
    path = _embedding(folder / "styles", "shinystyle", _width(tiny_sd))
    return {"folder": folder, "path": path, "engine": Engine(LoadOptions(embedding_dirs=(str(folder),)))}


def test_a_word_that_names_an_embedding_is_that_embedding_and_other_prompts_are_the_plain_models(tiny_sd, embedded):
    engine, plain_engine = embedded["engine"], Engine()
    base = dict(model=str(tiny_sd), seed=4, steps=3, preview_method="none")
    named = engine.run(GenerationRequest(prompt="a ShinyStyle square", **base))  # case does not matter, as in A1111
    as_text = plain_engine.run(GenerationRequest(prompt="a ShinyStyle square", **base))
    assert np.abs(_pixels(named) - _pixels(as_text)).max() > 5
    record, = named.recipe["embeddings"]
    assert record["name"] == "shinystyle" and record["sha256"] == hashlib.sha256(
        embedded["path"].read_bytes()).hexdigest() and record["encoders"] == 1
    # Loaded, it changes nothing for a prompt without its word; and it works from the negative prompt too.
    for prompt in ("a red square", "a shiny style square"):
        ours, theirs = (e.run(GenerationRequest(prompt=prompt, **base)) for e in (engine, plain_engine))
        assert np.array_equal(_pixels(ours), _pixels(theirs)) and "embeddings" not in ours.recipe
    negative = engine.run(GenerationRequest(prompt="a red square", negative_prompt="shinystyle", **base))
    assert negative.recipe["embeddings"][0]["name"] == "shinystyle"


def test_the_infotext_writes_ti_hashes_and_a_png_re_runs_with_the_embedding_or_says_it_is_missing(tiny_sd, embedded,
                                                                                                 tmp_path):
    engine = embedded["engine"]
    request = GenerationRequest(prompt="a (shinystyle:1.2) square", model=str(tiny_sd), seed=4, steps=3,
                                preview_method="none")  # emphasis: compel builds it, both vectors written out
    result = engine.run(request)
    png = engine.save(result, tmp_path / "out")
    line = png_recipe.a1111_parameters(result.request, result.recipe)
    digest = hashlib.sha256(embedded["path"].read_bytes()).hexdigest()[:12]
    assert f'TI hashes: "shinystyle: {digest}"' in line
    again = engine.run(engine.read_recipe(png).request(preview_method="none"))
    assert np.array_equal(_pixels(again), _pixels(result))
    elsewhere = Engine()  # no embeddings folder: the note says the word is read as text
    assert any(note.startswith("embedding shinystyle not found") for note in elsewhere.read_recipe(png).notes)


def test_an_sdxl_embedding_goes_into_both_text_encoders(tiny_sdxl, tmp_path):
    folder = tmp_path / "embeddings"
    _embedding(folder, "xlstyle", _width(tiny_sdxl), sdxl_width=_width(tiny_sdxl, "text_encoder_2"))
    engine = Engine(LoadOptions(embedding_dirs=(str(folder),)))
    base = dict(model=str(tiny_sdxl), seed=2, steps=2, preview_method="none", width=32, height=32)
    result = engine.run(GenerationRequest(prompt="an xlstyle circle", **base))
    assert result.recipe["embeddings"][0]["encoders"] == 2
    loaded = engine.loaded_model(str(tiny_sdxl)).pipeline
    assert "xlstyle" in loaded.tokenizer.get_vocab() and "xlstyle" in loaded.tokenizer_2.get_vocab()
    plain = Engine().run(GenerationRequest(prompt="an xlstyle circle", **base))
    assert np.abs(_pixels(result) - _pixels(plain)).max() > 0


def test_an_embedding_for_another_model_or_a_pickle_is_one_clear_line(tiny_sd, tmp_path):
    folder = tmp_path / "embeddings"
    _embedding(folder, "widestyle", _width(tiny_sd) * 2)
    (folder / "oldstyle.pt").write_bytes(b"not read")
    engine = Engine(LoadOptions(embedding_dirs=(str(folder),)))
    with pytest.raises(RequestError, match="widestyle.safetensors does not load as an embedding for this model"):
        engine.run(GenerationRequest(prompt="a widestyle square", model=str(tiny_sd), steps=2))
    with pytest.raises(RequestError, match="oldstyle.pt is a pickle file"):
        engine.run(GenerationRequest(prompt="a oldstyle square", model=str(tiny_sd), steps=2))


@pytest.mark.slow
def test_a_png_made_with_an_embedding_re_runs_through_its_snippet(tiny_sd, embedded, tmp_path):
    from tests.engine.test_reproduce_snippets import _assert_same_pixels, _run_snippets

    engine = embedded["engine"]
    saved = {}
    for prompt in ("a shinystyle square", "a (shinystyle:1.2) square"):  # the pipeline's encoding, and compel's
        request = GenerationRequest(prompt=prompt, model=str(tiny_sd), seed=4, steps=3, preview_method="none",
                                    scheduler="DPM++ 2M (diffusers)")
        saved[prompt] = engine.save(engine.run(request), tmp_path / "out")
    _assert_same_pixels(saved, _run_snippets(saved, tmp_path / "runs"))
