"""The registry: A1111 names, from_config on the model's config, real call counts."""

import pytest

from diffusers_tui.engine.sampling import registry as schedulers
from diffusers_tui.engine.errors import RequestError, SchedulerUnavailableError
from diffusers_tui.engine.demo.shapes import ShapeSpec
from diffusers_tui.engine.request import GenerationRequest


#: A1111 1.10's samplers (sd_samplers_kdiffusion, sd_samplers_timesteps) that run here under A1111's name.
KDIFFUSION_SAMPLERS = ("DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
                       "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart")
#: A1111's own (sd_samplers_timesteps, sd_samplers_lcm): all 20 of 1.10's names run on the engine.
A1111_SAMPLERS = KDIFFUSION_SAMPLERS + ("DDIM", "DDIM CFG++", "PLMS", "UniPC", "LCM")
#: Stable Diffusion's own scheduler config as current diffusers saves it (leading spacing, no clip_sample key).
SD_CONFIG = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
             "steps_offset": 1, "timestep_spacing": "leading", "prediction_type": "epsilon"}


def test_the_registry_names_a1111s_samplers_and_says_which_it_lacks():
    by_name = {entry.name: entry for entry in schedulers.REGISTRY}
    assert set(A1111_SAMPLERS) <= set(by_name)
    assert all(by_name[name].a1111 for name in A1111_SAMPLERS)
    assert not any(by_name[name].a1111 for name in ("DDPM", "DEIS", "DPM++ 2S", "Euler (diffusers)", "euler"))
    # k-diffusion's samplers run on the engine, under A1111's names; diffusers' classes keep theirs.
    assert all(by_name[name].is_engine and by_name[name].tool == "A1111" for name in A1111_SAMPLERS)
    assert by_name["DPM++ SDE (diffusers)"].class_name == "DPMSolverSDEScheduler"
    assert by_name["DPM++ 2S"].class_name == "DPMSolverSinglestepScheduler"
    # ComfyUI's "ddim" is Euler; A1111's "DDIM" is the DDIM sampler: one name each, as each tool spells it.
    assert schedulers.get("ddim").options["sampler"] == "ComfyUI:ddim"
    assert schedulers.get("DDIM").options["sampler"] == "A1111:DDIM"
    assert by_name["DDIM (diffusers)"].class_name == "DDIMScheduler" and not by_name["DDIM (diffusers)"].a1111


def test_old_one_name_spellings_are_a_sampler_and_a_schedule():
    assert schedulers.resolve("dpm++ 2m karras")[1] == "Karras"
    assert schedulers.resolve("DPM++ 2M Karras")[0].name == "DPM++ 2M"
    assert schedulers.resolve("DPM++ 2M SDE Exponential") == (schedulers.get("DPM++ 2M SDE"), "Exponential")
    assert schedulers.resolve("DPM SDE")[0].name == "DPM++ SDE"  # this tool's earlier name
    assert schedulers.resolve("Euler", "karras") == (schedulers.get("Euler"), "Karras")
    request = GenerationRequest(scheduler="LMS Karras")
    assert (request.scheduler, request.schedule) == ("LMS", "Karras")
    with pytest.raises(SchedulerUnavailableError, match="did you mean Euler.*`diffusers-tui schedulers` lists all"):
        schedulers.get("Eulerr")
    with pytest.raises(SchedulerUnavailableError, match="names the Karras schedule"):
        schedulers.resolve("DPM++ 2M Karras", "Exponential")
    with pytest.raises(SchedulerUnavailableError, match=r"Euler a \(diffusers\) has no Karras schedule"):
        schedulers.resolve("Euler a (diffusers)", "Karras")
    # A ComfyUI id takes ComfyUI's schedules; its spelling of a name both tools share is read as its own.
    assert schedulers.resolve("euler", "Karras") == (schedulers.get("euler"), "karras")
    assert schedulers.resolve("DPM++ 2M", "beta")[1] == "Beta"  # an A1111 sampler: A1111's Beta
    with pytest.raises(RequestError, match="schedule: unknown type 'Karas'"):
        GenerationRequest(scheduler="Euler", schedule="Karas")


def test_automatic_is_a1111s_default_for_each_sampler_and_the_full_sigma_range_is_used():
    from diffusers_tui.engine.sampling.sigma import schedules
    from diffusers_tui.engine.sampling.sigma.model_sigmas import ModelSigmas

    model = ModelSigmas.from_betas(schedulers_betas())

    def sigmas(name, schedule="Automatic", steps=20):
        built = schedulers.build(schedulers.get(name), SD_CONFIG, schedule)
        built.set_timesteps(steps)
        return built.sigma_list

    assert sigmas("DPM++ 2M") == pytest.approx(schedules.karras(model, 20).tolist())
    assert sigmas("DPM++ 2M SDE") == pytest.approx(schedules.exponential(model, 20).tolist())
    assert sigmas("Euler") == pytest.approx(schedules.a1111_uniform(model, 20).tolist())
    # DPM2 drops the next-to-last σ of a list one longer, as A1111 does.
    longer = schedules.karras(model, 21).tolist()
    assert sigmas("DPM2") == pytest.approx(longer[:-2] + longer[-1:])
    # A folder saved with leading spacing still starts at the model's largest sigma (t=999), as A1111 does.
    for name in ("Euler", "LMS", "DPM2", "Heun"):
        assert sigmas(name, "Karras")[0] == pytest.approx(14.61, abs=0.01), name
    # diffusers' classes keep A1111's defaults where they bear its names.
    built = schedulers.build(schedulers.get("DPM++ 2M (diffusers)"), SD_CONFIG)
    assert built.config.use_karras_sigmas
    # DDIM on A1111's timesteps, range(0, 1000, 1000 // steps) + 1: A1111 calls the model on all but t=1,
    # where it stops; diffusers' class calls it there too and steps on to t=0.
    ddim = schedulers.build(schedulers.get("DDIM"), SD_CONFIG)
    ddim.set_timesteps(20)
    assert ddim.timesteps.tolist() == list(range(951, 1, -50))
    theirs = schedulers.build(schedulers.get("DDIM (diffusers)"), SD_CONFIG)
    theirs.set_timesteps(20)
    assert [int(t) for t in theirs.timesteps] == list(range(951, 0, -50))


def schedulers_betas():
    import torch

    return torch.linspace(SD_CONFIG["beta_start"] ** 0.5, SD_CONFIG["beta_end"] ** 0.5, 1000, dtype=torch.float64) ** 2


def test_clip_sample_and_thresholding_are_off_unless_the_models_config_asks():
    for name in ("DDIM (diffusers)", "DDPM", "Heun (diffusers)"):
        built = schedulers.build(schedulers.get(name), SD_CONFIG)
        assert built.config.clip_sample is False, name
        assert getattr(built.config, "thresholding", False) is False
    asked = schedulers.build(schedulers.get("DDIM (diffusers)"), {**SD_CONFIG, "clip_sample": True})
    assert asked.config.clip_sample is True


@pytest.mark.parametrize("name", schedulers.names())
def test_every_offered_schedule_builds_and_steps(name):
    entry = schedulers.get(name)
    for schedule in entry.schedules:
        built = schedulers.build(entry, SD_CONFIG, schedule)
        built.set_timesteps(4)
        for key, value in entry.schedule_options(schedule).items():
            assert built.config[key] == value, (name, schedule, key)


@pytest.mark.parametrize("name", schedulers.names())
def test_every_entry_runs_two_steps_or_says_why(engine, tiny_sd, name):
    status = {s.entry.name: s for s in engine.scheduler_statuses(str(tiny_sd))}[name]
    if not status.available:
        assert status.reason
        return
    snapshots = []
    result = engine.run(GenerationRequest(prompt="a red square", model=str(tiny_sd), scheduler=name,
                                          steps=2, seed=1), on_step=snapshots.append)
    assert result.image is not None and not result.cancelled
    entry = schedulers.get(name)
    # The total counts real model calls: 2N-1 for second-order solvers, N+1 for PLMS, as many as an adaptive
    # sampler made (the pipeline's own count is its room for them).
    assert result.total_calls == result.model_calls == len(snapshots) == snapshots[-1].total
    if not entry.adaptive:
        assert result.total_calls == engine.loaded_model(str(tiny_sd)).pipeline.num_timesteps
    if entry.order == 2:
        assert result.total_calls == 3
    assert result.recipe["scheduler_class"] == entry.class_name
    for key, value in entry.schedule_options("Automatic").items():
        assert result.recipe["scheduler_config"][key] == value


def test_built_from_the_models_original_config(engine, tiny_sd):
    loaded = engine.loaded_model(str(tiny_sd))
    built = schedulers.build(schedulers.get("Euler"), loaded.original_scheduler_config, "Automatic")
    assert built.config.beta_schedule == "scaled_linear"
    assert built.config.beta_end == pytest.approx(0.012)
    assert loaded.scheduler.config.beta_end == pytest.approx(0.012)  # the original is untouched


def test_a_missing_package_marks_an_entry_unavailable(monkeypatch):
    import diffusers

    def needs_scipy(*args, **kwargs):
        raise ImportError("LMSDiscreteScheduler requires the scipy library")

    monkeypatch.setattr(diffusers.LMSDiscreteScheduler, "from_config", needs_scipy)
    status = {s.entry.name: s for s in schedulers.statuses(None, None)}
    assert not status["LMS (diffusers)"].available and "scipy" in status["LMS (diffusers)"].reason
    assert status["Euler"].available


def test_entries_the_model_does_not_declare_compatible_are_filtered():
    status = {s.entry.name: s for s in schedulers.statuses({}, {"DDIMScheduler", "DDPMScheduler"})}
    assert status["DDIM (diffusers)"].available
    assert not status["Euler"].available and "not compatible" in status["Euler"].reason


def test_a_live_scheduler_is_read_back_as_its_sampler_and_schedule():
    built = schedulers.build(schedulers.get("DPM++ 2M SDE"), {}, "Karras")
    assert schedulers.entry_for_scheduler(built) == (schedulers.get("DPM++ 2M SDE"), "Karras")
    plain = schedulers.build(schedulers.get("DPM++ 2M"), {}, "Uniform")
    assert schedulers.entry_for_scheduler(plain)[0].name == "DPM++ 2M"


def test_a1111s_own_parser_reads_back_the_sampler_and_schedule_we_ran(engine, tiny_sd, tiny_ddpm, tmp_path):
    """Every sampler and schedule, saved as a PNG: A1111's parse logic must run what we ran, or nothing of ours."""
    from PIL import Image

    from tests.a1111_infotext import parse_generation_parameters, what_a1111_runs

    # Every entry on Automatic, and every schedule type of each tool on one sampler of that tool.
    every_schedule = {"DPM++ 2M", "dpmpp_2m", "Euler (diffusers)"}
    for entry in schedulers.REGISTRY:
        for schedule in entry.schedules if entry.name in every_schedule else ("Automatic",):
            request = GenerationRequest(prompt="a blue square, (red:1.2)", negative_prompt="green",
                                        model=str(tiny_sd), scheduler=entry.name, schedule=schedule, steps=2, seed=4,
                                        preview_method="none")
            png = engine.save(engine.run(request), tmp_path)
            with Image.open(png) as image:
                infotext = image.text["parameters"]
            fields = parse_generation_parameters(infotext)
            assert (fields["Prompt"], fields["Negative prompt"]) == ("a blue square, (red:1.2)", "green")
            assert fields["Seed"] == "4" and fields["Steps"] == "2"
            if entry.tool == "ComfyUI":  # its noise followed ComfyUI's rules, which A1111's RNG field cannot say
                assert "RNG" not in fields and "diffusers-tui noise: ComfyUI" in infotext
            else:
                assert fields["RNG"] == "CPU"
            if not entry.a1111:
                # A1111 would run DPM++ 2M Karras under a name it does not know: no Sampler is written.
                assert "Sampler:" not in infotext and f"diffusers-tui sampler: {entry.name}" in infotext
                continue
            sampler, their_schedule = what_a1111_runs(infotext)
            assert sampler == entry.name, infotext
            if entry.concrete(schedule):  # DDIM, PLMS and UniPC keep their own timesteps in A1111 too
                assert their_schedule == entry.concrete(schedule), infotext
    unconditional = engine.run(GenerationRequest(model=str(tiny_ddpm), mode="unet", scheduler="DDIM", steps=2,
                                                 guidance=0.0, preview_method="none"))
    with Image.open(engine.save(unconditional, tmp_path)) as image:
        fields = parse_generation_parameters(image.text["parameters"])
    assert fields["Prompt"] == "" and "CFG scale" not in fields and fields["Sampler"] == "DDIM"


@pytest.mark.slow
def test_every_sampler_draws_what_the_demo_prompt_says_at_20_steps(engine):
    """DDIM drew garbage on the demo while clip_sample came from its class defaults; every entry must draw.

    Raced a prompt at a time (one batched model call a round: the engine's comparison, which gives each
    lane what its run alone gives); the fast tier's test below runs one of each kind alone."""
    from diffusers_tui.engine import build_comparison

    available = [status.entry.name for status in engine.scheduler_statuses("demo") if status.available]
    assert available[0] == "model default" and len(available) == len(schedulers.REGISTRY) + 1
    for seed, spec in enumerate(SPECS):
        names = available[seed::len(SPECS)]
        base = GenerationRequest(prompt=spec.caption, model="demo", steps=20, seed=seed, preview_method="none")
        race = engine.compare(build_comparison(base, [_lane(name) for name in names], "20"))
        assert race.batched and not race.cancelled and len(race.lanes) == len(names)
        for name, lane in zip(names, race.lanes):
            _assert_draws(lane.result.image, spec, name)


def test_one_sampler_of_each_kind_draws_what_the_demo_prompt_says_at_20_steps(engine):
    """The fast tier's share of the test above: the model's own, diffusers' classes, and each kind of engine sampler."""
    _draws_the_prompt(engine, ["model default", "DDIM", "Euler (diffusers)", "Euler", "Euler a", "DPM++ 2M SDE",
                               "DPM2 a", "DPM adaptive", "Restart", "dpmpp_2m", "euler_cfg_pp", "uni_pc", "lcm"])


COMFYUI_IDS = {entry.name for entry in schedulers.REGISTRY if entry.tool == "ComfyUI"}
SPECS = (ShapeSpec("red", "circle", "blue"), ShapeSpec("yellow", "square", "purple"),
         ShapeSpec("white", "triangle", "green"))


def _lane(name: str) -> str:
    """A sampler as a comparison lane names it: ComfyUI's ids on karras (its default, normal, ends DPM++ 3M SDE
    in speckle at 20 steps on the demo, as ComfyUI's own code does: benchmarks/sampler_parity.py, within 1
    level of it); the others on their own schedule."""
    return f"{name} karras" if name in COMFYUI_IDS else f"{name} Automatic" if name != "model default" else name


def _draws_the_prompt(engine, names):
    for index, name in enumerate(names):
        seed = index % len(SPECS)
        schedule = "karras" if name in COMFYUI_IDS else "Automatic"
        result = engine.run(GenerationRequest(prompt=SPECS[seed].caption, model="demo", scheduler=name,
                                              schedule=schedule, steps=20, seed=seed, preview_method="none"))
        _assert_draws(result.image, SPECS[seed], name)


def _assert_draws(image, spec, name: str) -> None:
    from diffusers_tui.engine.demo.shapes import read_shape

    reading = read_shape(image)
    assert (reading.colour, reading.shape, reading.background) == (spec.colour, spec.shape, spec.background), name


@pytest.mark.slow
def test_a1111_named_samplers_run_what_a1111_runs_or_say_how_far_they_are(engine):
    """Against k-diffusion's algorithms and A1111's schedules (benchmarks/kdiffusion_reference): RMSE <= 1 in
    0-255 units, unless the entry's parity note says why not. The reference can fail: it tells DPM++ 2M SDE's
    other noise apart."""
    from benchmarks.a1111_parity import GOAL, parity_rows

    rows, scale = parity_rows(steps=20, seed=1, engine=engine, schedules=("Automatic", "Karras"))
    assert scale > 10  # Euler against Heun: the figure can tell samplers apart
    measured = [(sampler, schedule, value, note) for sampler, schedule, value, note in rows if value is not None]
    assert len(measured) >= 18
    for sampler, schedule, value, note in measured:
        assert value <= GOAL or note, f"{sampler} {schedule}: RMSE {value:.2f} and no note says why"
    # The reference tells other noise apart: diffusers' DPM++ 2M SDE draws Gaussian noise, A1111 a Brownian tree.
    assert parity_rows(steps=20, seed=1, engine=engine, schedules=("Automatic",), names=("DPM++ 2M SDE (diffusers)",)
                       )[0][0][2] > 10 * GOAL


def test_the_models_own_scheduler_is_the_first_entry_and_runs_as_the_model_default(engine, tiny_sd):
    from diffusers_tui.engine import ComparisonRequest, Lane

    first = engine.scheduler_statuses(str(tiny_sd))[0]
    assert (first.entry.name, first.entry.class_name, first.available) == ("model default", "PNDMScheduler", True)
    assert GenerationRequest(scheduler="model default").scheduler is None  # the model's own, as a run asks for it
    base = GenerationRequest(prompt="a blue square", model=str(tiny_sd), steps=2, seed=1, preview_method="none")
    lanes = ComparisonRequest(base, (Lane("model default", 2), Lane("Euler", 2))).lane_requests()
    assert [lane.scheduler for lane in lanes] == [None, "Euler"]
    result = engine.run(lanes[0])
    assert result.recipe["scheduler_class"] == "PNDMScheduler" and result.recipe["scheduler_name"] == "PLMS (diffusers)"
