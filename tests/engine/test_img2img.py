"""img2img: a run from a picture, by each tool's strength rule, through from_pipe and the UNet loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from diffusers_tui.engine import Engine, GenerationRequest, RequestError
from diffusers_tui.engine.files.reading import parse_a1111
from diffusers_tui.engine.files.recipe import RECIPE_KEY, read_parameters
from diffusers_tui.engine.sampling.sigma import catalogue
from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas
from diffusers_tui.engine.sampling.sigma.partial import partial_schedule
from diffusers_tui.engine.sampling.sigma.stand_in import SigmaSamplerScheduler

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def corner_circle(tmp_path_factory):
    """A red circle in the top-left corner: the demo draws its circles anywhere else."""
    path = tmp_path_factory.mktemp("init") / "corner.png"
    picture = Image.new("RGB", (64, 64), (20, 20, 200))
    ImageDraw.Draw(picture).ellipse((2, 2, 30, 30), fill=(220, 30, 30))
    picture.save(path)
    return path


def _red(image) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    return (pixels[..., 0] > 120) & (pixels[..., 2] < 120)


def _overlap(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_strength_half_keeps_the_init_images_layout(engine, corner_circle, seed):
    init = _red(Image.open(corner_circle))
    from_picture = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=20, seed=seed,
                                                init_image=str(corner_circle), strength=0.5))
    from_noise = engine.run(GenerationRequest(prompt=PROMPT, scheduler="Euler", steps=20, seed=seed))
    assert _overlap(_red(from_picture.image), init) > 0.7 > 0.4 > _overlap(_red(from_noise.image), init)
    assert from_picture.model_calls == from_picture.total_calls == 11  # A1111: t_enc + 1 = int(0.5·20) + 1


@pytest.mark.parametrize("name, strength, calls", [
    ("Euler", 0.0, 1), ("Euler", 1.0, 20), ("Heun", 0.5, 21), ("DDIM", 0.5, 9), ("DDIM", 1.0, 18),
    ("euler", 0.5, 20), ("euler", 1.0, 20)])
def test_model_calls_follow_each_tools_strength_rule(engine, corner_circle, name, strength, calls):
    """A1111 keeps the last int(strength·steps) + 1 steps (strength 0: one step at the smallest σ); its DDIM
    the first int(strength·steps) timesteps, one call fewer; ComfyUI runs `steps` steps of a longer schedule."""
    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler=name, steps=20, init_image=str(corner_circle),
                                          strength=strength))
    assert result.model_calls == result.total_calls == calls


def test_the_partial_schedule_is_a1111s_and_comfyuis_slice():
    model = ModelSigmas.from_betas(torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2)
    euler, comfy = catalogue.sampler("A1111:Euler"), catalogue.sampler("ComfyUI:euler")
    full = catalogue.sigmas_for(euler, "Karras", model, 20)
    part = partial_schedule(euler, "Karras", model, 20, 0.3)
    assert part.sigmas == full[20 - 6 - 1:] and part.noise_scale == full[13] and part.latent_scale == 1.0
    assert part.tree_sigmas == full  # A1111's Brownian tree spans the whole schedule
    longer = catalogue.sigmas_for(comfy, "karras", model, int(20 / 0.3))
    assert partial_schedule(comfy, "karras", model, 20, 0.3).sigmas == longer[-21:]
    flow = partial_schedule(euler, "Karras", model, 20, 0.3, flow=True)
    assert (flow.latent_scale, flow.noise_scale) == (1 - full[13], full[13])
    # The hires pass (img2img_fix_steps): exactly `steps` steps of an int(steps / strength) schedule.
    hires = partial_schedule(euler, "Karras", model, 10, 0.5, exact_steps=True)
    assert hires.sigmas == catalogue.sigmas_for(euler, "Karras", model, 20)[10:] and len(hires.sigmas) == 11


def test_ddim_is_noised_one_timestep_above_its_first_call_as_a1111_does():
    model = ModelSigmas.from_betas(torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2)
    part = partial_schedule(catalogue.sampler("A1111:DDIM"), "Automatic", model, 20, 0.5)
    timesteps = [t + 1 for t in range(0, 1000, 50)]  # A1111's: 1, 51 ... 951
    assert part.sigmas == [float(model.sigmas[t]) for t in reversed(timesteps[:10])]
    alpha = 1 / (1 + model.sigmas.double() ** 2)
    enc, top = timesteps[10], timesteps[9]
    # x_vp = √ᾱ_enc·x₀ + √(1-ᾱ_enc)·ε, read as x_σ = x_vp / √ᾱ_top at the first call.
    assert part.latent_scale == pytest.approx(float((alpha[enc] / alpha[top]).sqrt()))
    assert part.noise_scale == pytest.approx(float(((1 - alpha[enc]) / alpha[top]).sqrt()))


def test_the_start_is_the_init_latent_plus_the_seeds_own_noise():
    scheduler = SigmaSamplerScheduler(sampler="A1111:Euler", schedule="Karras", seed=7, denoise=0.5)
    scheduler.set_timesteps(10)
    latent = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    start = scheduler.add_noise(latent, torch.zeros_like(latent), scheduler.timesteps[:1])
    seed_noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(7))  # A1111's CPU noise
    assert torch.allclose(start, latent + scheduler.sigma_list[0] * seed_noise, atol=1e-6)
    assert scheduler.sigma_list[0] == scheduler.partial.noise_scale


def test_the_pipeline_is_built_once_from_the_loaded_one_sharing_its_modules(corner_circle):
    engine = Engine()
    engine.run(GenerationRequest(prompt=PROMPT, steps=2, init_image=str(corner_circle)))
    loaded = engine.loaded_model("demo")
    sibling = loaded.related_pipelines["img2img"]
    assert type(sibling).__name__ == "StableDiffusionImg2ImgPipeline"
    assert sibling.unet is loaded.pipeline.unet and sibling.vae is loaded.pipeline.vae
    engine.run(GenerationRequest(prompt=PROMPT, steps=4, init_image=str(corner_circle), strength=0.5))
    assert loaded.related_pipelines["img2img"] is sibling


def test_a_picture_of_another_size_is_stretched_to_the_runs_with_lanczos(engine, tmp_path, corner_circle):
    wide = tmp_path / "wide.png"
    Image.open(corner_circle).resize((128, 40)).save(wide)
    result = engine.run(GenerationRequest(prompt=PROMPT, steps=4, init_image=str(wide), strength=0.5))
    assert result.image.size == (64, 64) and result.recipe["init_image"]["size"] == [128, 40]
    from diffusers_tui.engine.files.init_image import load

    assert load(str(wide), 64, 64).resize_note.startswith("init image 128x40 resized to 64x64 (Lanczos")


def test_bad_init_images_get_one_line_naming_the_file(engine, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    bomb = tmp_path / "bomb.png"
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"
    bomb.write_bytes(header + b"\x00" * 20)
    for path, words in ((tmp_path / "missing.png", "missing.png"), (tmp_path, "is a folder"),
                        (text, "notes.png"), (bomb, "too large")):
        with pytest.raises(RequestError) as caught:
            engine.run(GenerationRequest(prompt=PROMPT, steps=2, init_image=str(path)))
        message = str(caught.value)
        assert message.startswith("init_image: ") and words in message and "\n" not in message
    with pytest.raises(RequestError, match="strength: 1.5 is outside 0 to 1"):
        GenerationRequest(prompt=PROMPT, init_image="x.png", strength=1.5)


def test_the_infotext_says_denoising_strength_and_reads_back(engine, tmp_path, corner_circle):
    result = engine.run(GenerationRequest(prompt=PROMPT, steps=4, init_image=str(corner_circle), strength=0.4))
    png = engine.save(result, tmp_path)
    parameters = read_parameters(png)
    assert "Denoising strength: 0.4" in parameters
    recipe = json.loads(Image.open(png).text[RECIPE_KEY])
    assert recipe["init_image"]["sha256"] and recipe["request"]["init_image"] == str(corner_circle)
    read = parse_a1111(parameters)
    assert read.fields["strength"] == 0.4
    assert any("init image" in note and "--init-image" in note for note in read.notes)
    # An A1111 img2img PNG re-runs once its picture is given.
    again = engine.run(read.request(init_image=str(corner_circle)))
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))


@pytest.mark.slow
def test_img2img_snippets_run_as_written_and_save_the_same_pixels(engine, tmp_path, corner_circle, tiny_ddpm):
    from tests.engine.test_reproduce_snippets import _assert_same_pixels, _run_snippets

    saved = {}
    for name, scheduler, model in (("euler", "Euler", "demo"), ("own", None, "demo"), ("ddim", "DDIM", "demo"),
                                   ("unet-euler", "Euler", str(tiny_ddpm)), ("unet-own", None, str(tiny_ddpm))):
        request = GenerationRequest(prompt=PROMPT if model == "demo" else "", model=model, scheduler=scheduler,
                                    steps=6, seed=5, init_image=str(corner_circle), strength=0.6)
        saved[name] = engine.save(engine.run(request), tmp_path / "out")
    _assert_same_pixels(saved, _run_snippets(saved, tmp_path / "runs"))


@pytest.mark.parametrize("scheduler", ["Euler", None])
def test_the_run_shows_the_noised_picture_as_step_0_then_counts_the_calls_it_makes(engine, corner_circle, scheduler):
    snapshots = []
    result = engine.run(GenerationRequest(prompt=PROMPT, scheduler=scheduler, steps=10, init_image=str(corner_circle),
                                          strength=0.5, preview="noisy"), on_step=snapshots.append)
    assert [s.step for s in snapshots] == list(range(0, result.model_calls + 1))
    assert {s.total for s in snapshots} == {result.total_calls} and result.frames[0].step == 0
    start = result.frames[0].latents
    picture = start.decoders.image(start, "noisy", "vae")
    overlap = _overlap(_red(picture), _red(Image.open(corner_circle)))
    assert overlap > 0.3  # the circle in its corner, under noise
    # The steps are the kept part's: diffusers' DPM++ 2M at 10 steps and 0.5 starts at t = 500, not 999.
    assert snapshots[1].timestep < 999 and snapshots[1].timestep == snapshots[0].timestep


def test_the_resize_note_waits_for_a_model(corner_circle):
    """The app asks for notes as it builds a run, also while the model is still loading (no summary yet)."""
    from diffusers_tui.engine import init_image_note

    assert init_image_note(GenerationRequest(prompt=PROMPT, init_image=str(corner_circle)), None) is None


@pytest.mark.slow
def test_a_variation_seed_moves_the_starts_noise_as_a1111s_img2img_does(engine, corner_circle, tiny_ddpm, tmp_path):
    """Strength 0 is the seed's own run; on the UNet loop (no VAE encode to sample) strength 1 is the variation
    seed's; a diffusers class, which draws its start's noise itself, says it needs an engine sampler."""
    base = dict(prompt=PROMPT, scheduler="Euler", steps=8, seed=3, init_image=str(corner_circle), strength=0.7)
    plain = engine.run(GenerationRequest(**base))
    none = engine.run(GenerationRequest(**base, variation_seed=9, variation_strength=0.0))
    half = engine.run(GenerationRequest(**base, variation_seed=9, variation_strength=0.5))
    assert np.array_equal(np.asarray(plain.image), np.asarray(none.image))
    assert np.abs(np.asarray(half.image, dtype=int) - np.asarray(plain.image, dtype=int)).mean() > 1
    pixel = dict(model=str(tiny_ddpm), scheduler="Euler", steps=8, init_image=str(corner_circle), strength=0.7)
    varied = engine.run(GenerationRequest(**pixel, seed=3, variation_seed=9, variation_strength=1.0))
    assert np.array_equal(np.asarray(varied.image), np.asarray(engine.run(GenerationRequest(**pixel, seed=9)).image))
    with pytest.raises(RequestError, match="needs an engine sampler"):
        engine.run(GenerationRequest(**{**base, "scheduler": None}, variation_seed=9, variation_strength=0.5))
    from tests.engine.test_reproduce_snippets import _assert_same_pixels, _run_snippets

    saved = {"pipe": engine.save(half, tmp_path / "out"),  # the snippets draw the same start
             "unet": engine.save(engine.run(GenerationRequest(**pixel, seed=3, variation_seed=9,
                                                              variation_strength=0.4)), tmp_path / "out")}
    _assert_same_pixels(saved, _run_snippets(saved, tmp_path / "runs"))
