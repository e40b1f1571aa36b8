"""Transformer pipelines run like any model: generate, previews, cancel, save, snippet, compare.

Tiny random-weight pipelines of each family, built from configs (tests/tiny_transformers.py).
Flux, Chroma and Qwen-Image pack 2x2 latent patches into tokens; Flux.2 also batch-normalises
them; Qwen-Image's VAE decodes one-frame videos; PixArt reports steps by the legacy callback.
"""

import functools
import threading

import numpy as np
import pytest

from diffusers_tui.engine import ComparisonRequest, GenerationRequest, Lane, guidance_note
from tests import tiny_transformers as tiny

BUILDERS = {"sd3": tiny.build_tiny_sd3, "flux": tiny.build_tiny_flux, "flux2-klein": tiny.build_tiny_flux2_klein,
            "qwen-image": tiny.build_tiny_qwen_image, "pixart-sigma": tiny.build_tiny_pixart_sigma,
            "sana": tiny.build_tiny_sana, "chroma": tiny.build_tiny_chroma}
PIPELINES = {"sd3": "StableDiffusion3Pipeline", "flux": "FluxPipeline", "flux2-klein": "Flux2KleinPipeline",
             "qwen-image": "QwenImagePipeline", "pixart-sigma": "PixArtSigmaPipeline", "sana": "SanaPipeline",
             "chroma": "ChromaPipeline"}
#: The latent family each previews as: a published map where its VAE has one (found by its statistics).
PREVIEW_FAMILIES = {"sd3": "sd3", "flux": "flux", "chroma": "flux", "qwen-image": "wan", "pixart-sigma": "sdxl",
                    "sana": "fitted", "flux2-klein": "fitted"}
FLOW = {"sd3", "flux", "flux2-klein", "qwen-image", "sana", "chroma"}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def transformer_model(request, tmp_path_factory):
    name = request.param
    return name, str(BUILDERS[name](tmp_path_factory.mktemp("models") / f"tiny-{name}"))


@functools.cache
def _size(model) -> tuple[int, int]:
    """A 4:3 size the model takes: 32x24, or 4x3 of its size multiple (Sana's pipeline asks for 32)."""
    from diffusers_tui.engine import Engine

    multiple = max(8, Engine().load(model).size_multiple)
    return 4 * multiple, 3 * multiple


def _request(model, **fields):
    width, height = _size(model)
    return GenerationRequest(**{"prompt": "a red circle", "model": model, "steps": 4, "seed": 3, "width": width,
                                "height": height, **fields})


def test_a_transformer_pipeline_loads_with_its_own_scheduler_first_and_the_samplers_that_fit(engine, transformer_model):
    name, model = transformer_model
    summary = engine.load(model)
    loaded = engine.loaded_model(model)
    assert summary.mode == "text-to-image" and type(loaded.pipeline).__name__ == PIPELINES[name]
    # Its latents are previewed by its family's published latent->RGB map (ComfyUI's) where its VAE has one.
    assert loaded.family == PREVIEW_FAMILIES[name]
    assert ("fitted" in " ".join(summary.notes)) == (PREVIEW_FAMILIES[name] == "fitted" and summary.preview_auto == "latent")
    first, *others = summary.statuses
    assert (first.entry.name, first.entry.class_name) == ("model default", type(loaded.scheduler).__name__)
    available = {status.entry.name for status in others if status.available}
    assert {"Euler", "Euler a", "euler", "euler_ancestral"} <= available
    assert {"UniPC", "UniPC (diffusers)"} & available  # diffusers' class, by its A1111 name on ε-models
    if name in FLOW and loaded.scheduler.config.get("use_dynamic_shifting"):  # FlowMatchHeun takes no dynamic shift
        heun = next(status for status in others if status.entry.name == "Heun (diffusers)")
        assert not heun.available and ("shift its schedule by the image size" in heun.reason
                                       or "its own σ list" in heun.reason)
    if name in ("qwen-image", "chroma"):  # they hand the scheduler np.linspace σs, which DPM-Solver cannot take
        assert not next(status for status in others if status.entry.name == "DPM++ 2M (diffusers)").available


#: Families every engine sampler runs on (one flow-matching, one ε); the others run diffusers' classes and
#: one engine sampler of each kind: ancestral, Brownian, several calls a step, adaptive, CFG++, multistep.
EVERY_ENGINE_SAMPLER = {"sd3", "pixart-sigma"}
ENGINE_SAMPLE = {"Euler", "Euler a", "DPM++ 2M SDE", "Heun", "DPM adaptive", "euler_cfg_pp", "lcm", "uni_pc", "deis"}
DIFFUSERS_CLASSES_BY_A1111_NAME = {"DDIM", "PLMS", "UniPC"}


def test_every_sampler_offered_runs_and_the_others_say_why_not(engine, transformer_model):
    name, model = transformer_model
    summary = engine.load(model)
    offered = [status.entry.name for status in summary.statuses[1:] if status.available]
    if name in FLOW:  # ComfyUI runs every sampler on flow models; diffusers' flow classes stay beside them
        assert {"Euler", "euler_ancestral", "dpmpp_2m_sde", "lcm", "uni_pc", "UniPC (diffusers)",
                "LCM (diffusers)"} <= set(offered)
    if name not in EVERY_ENGINE_SAMPLER:  # the engine's catalogue is run whole on one family of each kind
        offered = [sampler for sampler in offered if sampler in ENGINE_SAMPLE or "(diffusers)" in sampler
                   or sampler in DIFFUSERS_CLASSES_BY_A1111_NAME]
    for sampler in offered:
        snapshots = []
        result = engine.run(_request(model, scheduler=sampler, steps=3), on_step=snapshots.append)
        assert result.image is not None and result.stopped is None, sampler
        assert np.asarray(engine.preview(snapshots[-1], "latent"), dtype=float).std() > 0, sampler
    for status in summary.statuses[1:]:
        assert status.available or status.reason, status.entry.name


def test_stochastic_samplers_draw_their_step_noise_from_the_runs_seed(engine, transformer_model):
    """These pipelines call `step` without their generator: the run hands it over, so the global RNG never counts."""
    import torch

    name, model = transformer_model
    offered = {status.entry.name for status in engine.load(model).statuses[1:] if status.available}
    for sampler in sorted(offered & {"Euler a", "DPM++ 2M SDE", "lcm", "LCM (diffusers)", "Euler a (diffusers)"}):
        images = []
        for global_seed in (1, 2):
            torch.manual_seed(global_seed)
            images.append(np.asarray(engine.run(_request(model, scheduler=sampler, preview_method="none")).image))
        assert np.array_equal(*images), sampler


def test_a_flow_schedule_below_sigma_one_starts_from_that_sigma_times_the_pipelines_noise(engine, transformer_model):
    """ComfyUI starts a flow model at σ₀·noise (ddim_uniform's σ₀ is under 1); the pipelines draw unit noise,
    packed or not, and the first model calls must see it scaled."""
    name, model = transformer_model
    if name not in FLOW:
        pytest.skip("not a flow-matching model")
    loaded = engine.loaded_model(model)
    denoiser = loaded.pipeline.transformer
    first_inputs = []

    def keep(module, args, kwargs, output):  # after every pre-hook: what the model was given
        first_inputs.append((kwargs.get("hidden_states", args[0] if args else None)).float().clone())

    handle = denoiser.register_forward_hook(keep, with_kwargs=True)
    try:
        starts = {}
        for schedule in ("normal", "ddim_uniform"):
            first_inputs.clear()
            result = engine.run(_request(model, scheduler="euler", schedule=schedule, preview_method="none"))
            assert result.stopped is None, result.stopped
            starts[schedule] = first_inputs[0]
            # The run's own σ list (Flux-like models shift it by the image size).
            sigma_0 = loaded.pipeline.scheduler.sigma_list[0]
    finally:
        handle.remove()
    assert 0.5 < sigma_0 < 0.999
    torch = pytest.importorskip("torch")
    torch.testing.assert_close(starts["ddim_uniform"], starts["normal"] * sigma_0, rtol=1e-3, atol=1e-4)


def test_a_class_that_cannot_shift_by_image_size_is_refused_for_that_reason_at_any_step_count(engine,
                                                                                              transformer_model):
    from diffusers_tui.engine.errors import RequestError

    name, model = transformer_model
    if not engine.loaded_model(model).scheduler.config.get("use_dynamic_shifting"):
        pytest.skip("this model's schedule is not shifted by the image size")
    for steps in (1, 4):
        with pytest.raises(RequestError, match=r"scheduler: Heun \(diffusers\) cannot shift its schedule by the "
                                               r"image size.*choose another"):
            engine.run(_request(model, scheduler="Heun (diffusers)", steps=steps))


def test_guidance_means_what_the_family_makes_of_it(engine, transformer_model):
    name, model = transformer_model
    summary = engine.load(model)
    kind = {"flux": "distilled"}.get(name, "cfg")
    assert summary.guidance == kind and summary.guidance_default is not None
    assert summary.negative_prompt == (name not in ("flux", "flux2-klein"))
    result = engine.run(_request(model, guidance=2.5, negative_prompt="blue", preview_method="none"))
    arguments = result.recipe["call_arguments"]
    keyword = "true_cfg_scale" if name == "qwen-image" else "guidance_scale"
    assert arguments[keyword] == 2.5
    assert arguments.get("negative_prompt") == ("blue" if summary.negative_prompt else None)
    if name in ("pixart-sigma", "sana"):  # the size asked for is the size run, not the nearest trained bin
        assert arguments["use_resolution_binning"] is False
    # A negative prompt the model cannot use gets a note before the run, in the app and the CLI.
    note = guidance_note(GenerationRequest(prompt="x", negative_prompt="blue", guidance=2.5), summary)
    assert (note is not None and "no negative prompt" in note) == (not summary.negative_prompt)
    # Classifier-free guidance off (1 or below): the negative prompt steers nothing, and the note says so.
    note = guidance_note(GenerationRequest(prompt="x", negative_prompt="blue", guidance=1.0), summary)
    assert (note is not None and "not used at guidance 1" in note) == (kind == "cfg" and summary.negative_prompt)


@pytest.mark.parametrize("scheduler, schedule", [(None, "Automatic"), ("Euler", "Karras"), ("UniPC", "Automatic"),
                                                 ("Euler a", "Automatic")])
def test_every_step_is_reported_and_previewed_at_the_images_aspect(engine, transformer_model, scheduler, schedule):
    name, model = transformer_model
    snapshots = []
    result = engine.run(_request(model, scheduler=scheduler, schedule=schedule), on_step=snapshots.append)
    assert result.image.size == _size(model) and result.stopped is None and not result.cancelled
    assert [s.step for s in snapshots] == list(range(1, result.total_calls + 1))
    sigmas = [s.sigma for s in snapshots]
    assert all(a > b for a, b in zip(sigmas, sigmas[1:]))
    if name in FLOW:  # flow matching: σ runs from 1 (pure noise) down
        assert sigmas[0] == pytest.approx(1.0, abs=1e-3)
    for snapshot in snapshots:
        for method in ("vae", "latent"):
            picture = np.asarray(engine.preview(snapshot, method), dtype=float)
            assert picture.shape[1] * 3 == picture.shape[0] * 4  # the image's aspect ratio
            assert picture.std() > 0  # never a constant frame


def test_cancel_stops_within_one_step(engine, transformer_model):
    _name, model = transformer_model
    cancel = threading.Event()
    seen = []

    def on_step(snapshot):
        seen.append(snapshot.step)
        if snapshot.step == 2:
            cancel.set()

    result = engine.run(_request(model, steps=8), on_step=on_step, cancel=cancel)
    assert result.cancelled and result.image is None and seen == [1, 2]


def test_saved_recipes_rerun_to_the_same_pixels(engine, transformer_model, tmp_path):
    _name, model = transformer_model
    first = engine.run(_request(model, scheduler="UniPC", negative_prompt="blue"))
    png = engine.save(first, tmp_path)
    again = engine.run(engine.read_recipe(png).request(model=model))
    assert (again.request.scheduler, again.request.negative_prompt) == ("UniPC", "blue")
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))


def test_comparisons_batch_every_family_through_its_pipeline_and_each_lane_is_its_solo_run(engine, transformer_model):
    """Every family's transformer takes a timestep per sample: lanes the pipeline treats alike share its calls."""
    name, model = transformer_model
    summary = engine.load(model)
    offered = [status.entry.name for status in summary.statuses if status.available]
    # Same-class lanes share a call (Euler, Euler a: one FlowMatchEuler batch), others get their own.
    lanes = tuple(Lane(sampler, 3) for sampler in offered[:4]) + (Lane("Euler", 2),)
    base = _request(model, preview_method="latent", negative_prompt="blue", guidance=3.0)
    seen: list[tuple[int, int]] = []
    result = engine.compare(ComparisonRequest(base, lanes), on_lane_step=lambda lane, snapshot: seen.append(
        (lane, snapshot.step)))
    assert result.batched and not result.notes
    for index, (lane, raced) in enumerate(zip(lanes, result.lanes)):
        solo = engine.run(GenerationRequest(**{**base.to_dict(), "steps": lane.steps, "scheduler": lane.scheduler}))
        difference = np.abs(np.asarray(solo.image, dtype=int) - np.asarray(raced.result.image, dtype=int))
        assert difference.max() <= 2 and raced.result.model_calls == solo.model_calls, lane.label
        assert [step for lane_index, step in seen if lane_index == index] == list(range(1, solo.model_calls + 1))
        assert raced.frames and np.asarray(engine.preview(raced.frames[-1], "latent"), dtype=float).std() > 0
    # The check can fail: the samplers really differ.
    assert np.abs(np.asarray(result.lanes[0].result.image, dtype=int)
                  - np.asarray(result.lanes[4].result.image, dtype=int)).max() > 2


def test_a_transformer_family_outside_the_tested_ones_runs_and_says_what_it_lacks(engine, tmp_path):
    model = str(tiny.build_tiny_auraflow(tmp_path / "tiny-auraflow"))
    summary = engine.load(model)
    assert any("generic transformer adapter" in note and "lane after lane" in note for note in summary.notes)
    snapshots = []
    result = engine.run(_request(model, steps=3), on_step=snapshots.append)
    assert result.image.size == _size(model) and len(snapshots) == 3
    assert np.asarray(engine.preview(snapshots[-1], "latent"), dtype=float).std() > 0


def test_img2img_hires_and_pag_run_or_say_in_one_line_why_not(engine, transformer_model, tmp_path):
    """Every family: a run from a picture, the hires fix and PAG either run (through from_pipe) or are refused in
    one line naming the field; none fails part way."""
    from PIL import Image

    from diffusers_tui.engine import GenerationRequest, RequestError

    name, model = transformer_model
    picture = tmp_path / "start.png"
    Image.new("RGB", (40, 24), (200, 30, 30)).save(picture)
    for fields, field in (({"init_image": str(picture), "strength": 0.6}, "init_image"),
                          ({"hires_scale": 2, "hires_steps": 2}, "hires_scale"), ({"pag_scale": 2.0}, "pag_scale")):
        request = GenerationRequest(prompt="a red circle", model=model, scheduler="Euler", steps=3, seed=1, **fields)
        try:
            result = engine.run(request)
        except RequestError as error:
            assert error.field == field and "\n" not in str(error), (name, str(error))
            continue
        assert result.image is not None and result.model_calls >= 1, name
        if field == "hires_scale":
            assert result.image.size[0] == 2 * result.recipe["width"], name
