"""The built-in flow-matching demo: an SD3-layout model that loads, previews, cancels, compares and reruns like any.

It is the trained model the flow path is tested on: the tiny random pipelines of
test_transformer_families show that each family runs, this one that the pictures are right.
"""

import threading

import numpy as np
import pytest

from diffusers_tui.engine import ComparisonRequest, GenerationRequest, Lane
from diffusers_tui.engine.demo.shapes import ShapeSpec, read_shape

CASES = [ShapeSpec("red", "circle", "blue"), ShapeSpec("yellow", "square", "purple"),
         ShapeSpec("white", "triangle", "green")]


def test_demo_flow_loads_through_the_sd3_family_with_its_flow_sampler_first(engine):
    summary = engine.load("demo-flow")
    loaded = engine.loaded_model("demo-flow")
    assert type(loaded.pipeline).__name__ == "StableDiffusion3Pipeline" and loaded.pipeline.text_encoder_3 is None
    assert summary.native_size == (64, 64) and summary.guidance == "cfg" and summary.negative_prompt
    first = summary.statuses[0]
    assert (first.entry.name, first.entry.class_name) == ("model default", "FlowMatchEulerDiscreteScheduler")
    assert {"Euler", "Euler a", "Heun", "DPM++ 2M", "UniPC (diffusers)", "LCM (diffusers)", "euler", "lcm", "uni_pc"} <= {
        status.entry.name for status in summary.statuses if status.available}
    # It brings its own preview decoder, so auto shows full-size pictures, and it knows the demo's words.
    assert "taesd" in summary.preview_methods and summary.vocabulary


@pytest.mark.parametrize("seed, spec", list(enumerate(CASES)))
def test_demo_flow_draws_what_the_prompt_says(engine, seed, spec):
    """A small version of its quality check (benchmarks/demo_quality.py): a broken model fails CI."""
    result = engine.run(GenerationRequest(prompt=spec.caption, model="demo-flow", seed=seed, preview_method="none"))
    reading = read_shape(result.image)
    assert (reading.colour, reading.shape, reading.background) == (spec.colour, spec.shape, spec.background)


def test_its_previews_show_the_picture_forming(engine):
    """Halfway through, the live preview by its TAESD (what auto picks where a frame decodes within the budget,
    as on most machines) already shows the prompt's colours."""
    spec = CASES[0]
    frames = []
    result = engine.run(GenerationRequest(prompt=spec.caption, model="demo-flow", seed=0), on_step=frames.append)
    halfway = engine.preview(frames[len(frames) // 2 - 1], "taesd")
    assert halfway.size == result.image.size
    reading = read_shape(halfway)
    assert (reading.colour, reading.background) == (spec.colour, spec.background)
    early, late = (np.asarray(engine.preview(frames[i], "taesd"), dtype=float) for i in (0, -1))
    final = np.asarray(result.image, dtype=float)
    assert np.abs(late - final).mean() < np.abs(early - final).mean()  # each step nearer the final image


def test_cancel_stops_within_one_step(engine):
    cancel = threading.Event()
    seen = []

    def on_step(snapshot):
        seen.append(snapshot.step)
        if snapshot.step == 3:
            cancel.set()

    result = engine.run(GenerationRequest(prompt=CASES[0].caption, model="demo-flow", steps=10, seed=1),
                        on_step=on_step, cancel=cancel)
    assert result.cancelled and result.image is None and seen == [1, 2, 3]


def test_a_batched_comparison_of_flow_samplers_matches_each_solo_run(engine):
    """SD3's MMDiT takes a timestep per sample: the lanes share each model call, and each image is its solo run's."""
    base = GenerationRequest(prompt=CASES[1].caption, model="demo-flow", seed=4, preview_method="none")
    lanes = (Lane("Euler", 8), Lane("Euler a", 8), Lane("Heun", 4), Lane("LCM", 4))  # LCM: a flow-only name
    result = engine.compare(ComparisonRequest(base, lanes))
    assert result.batched and not result.notes
    for lane, raced in zip(lanes, result.lanes):
        solo = engine.run(GenerationRequest(**{**base.to_dict(), "scheduler": lane.scheduler, "steps": lane.steps}))
        difference = np.abs(np.asarray(solo.image, dtype=int) - np.asarray(raced.result.image, dtype=int))
        assert difference.max() <= 2 and raced.result.model_calls == solo.model_calls, lane.scheduler
        assert read_shape(raced.result.image).background == CASES[1].background


def test_a_saved_run_reruns_from_its_recipe_to_the_same_pixels(engine, tmp_path):
    first = engine.run(GenerationRequest(prompt=CASES[2].caption, model="demo-flow", scheduler="DPM++ 2M", steps=8,
                                         seed=5, preview_method="none"))
    again = engine.run(engine.read_recipe(engine.save(first, tmp_path)).request())
    assert again.request.model == "demo-flow" and again.request.scheduler == "DPM++ 2M"
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))


def test_its_training_shortcut_computes_what_the_pipeline_runs():
    """Training attends to T5's 256 zero rows as one row with log(256) added: the same function as the padded text."""
    import copy

    import torch

    from diffusers_tui.engine.demo import train_flow

    torch.manual_seed(0)
    transformer = train_flow.build_transformer().eval()
    pipe = train_flow.build_pipeline(transformer)
    captions = [CASES[0].caption, ""]
    short_context, pooled, zero_rows = train_flow.caption_embeddings(pipe, captions)
    with torch.no_grad():
        full_context, _, full_pooled, _ = pipe.encode_prompt(captions, None, None, device="cpu",
                                                             do_classifier_free_guidance=False)
        latents, timestep = torch.randn(2, 4, 16, 16), torch.tensor([900.0, 100.0])
        expected = transformer(hidden_states=latents, timestep=timestep, encoder_hidden_states=full_context,
                               pooled_projections=full_pooled).sample
        shortcut = copy.deepcopy(transformer)
        shortcut.set_attn_processor(train_flow.RepeatedTokenAttention(zero_rows))
        got = shortcut(hidden_states=latents, timestep=timestep, encoder_hidden_states=short_context,
                       pooled_projections=pooled).sample
    assert zero_rows == 256 and short_context.shape[1] == pipe.tokenizer.model_max_length + 1
    assert torch.allclose(got, expected, atol=1e-5)
    # The check can fail: a plain processor on the short context computes something else.
    plain = transformer(hidden_states=latents, timestep=timestep, encoder_hidden_states=short_context,
                        pooled_projections=pooled).sample
    assert not torch.allclose(plain, expected, atol=1e-3)


def test_a_batched_comparison_cancels_within_one_step(engine):
    cancel = threading.Event()
    seen = []

    def on_lane_step(lane, snapshot):
        seen.append(snapshot.step)
        if snapshot.step == 2:
            cancel.set()

    base = GenerationRequest(prompt=CASES[0].caption, model="demo-flow", seed=2, preview_method="none")
    result = engine.compare(ComparisonRequest(base, (Lane("Euler", 10), Lane("Euler a", 10))), on_lane_step, cancel)
    assert result.cancelled and max(seen) == 2
    assert all(lane.result.cancelled and lane.result.image is None for lane in result.lanes)
