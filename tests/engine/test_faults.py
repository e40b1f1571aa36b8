"""Faults during a run and while loading: each one clear message, memory freed, the next run fine."""

import json
import shutil

import pytest
import torch

from diffusers_tui.engine.models import loading, names
from diffusers_tui.engine.errors import ModelLoadError, OutOfMemory, RequestError, RunError
from diffusers_tui.engine.request import GenerationRequest
from diffusers_tui.engine import LoadOptions
from tests.fault_injection import fail_at, nan_output


@pytest.mark.parametrize("model_fixture", ["tiny_sd", "tiny_ddpm"])
def test_out_of_memory_is_explained_freed_and_the_next_run_works(engine, model_fixture, request, monkeypatch):
    model = str(request.getfixturevalue(model_fixture))
    loaded = engine.loaded_model(model)
    unet = loaded.pipeline.unet if loaded.pipeline is not None else loaded.unet
    seen = fail_at(monkeypatch, unet, 3, lambda: torch.OutOfMemoryError("CUDA out of memory (simulated)"))
    run = GenerationRequest(prompt="a red square", model=model, scheduler="Euler", steps=5, seed=1)
    with pytest.raises(OutOfMemory) as caught:
        engine.run(run)
    message = str(caught.value)
    assert "out of memory at model call 3 of 5" in message and "smaller size" in message
    assert caught.value.__context__ is None and seen["tensor"]() is None  # the failing step's memory is gone
    monkeypatch.undo()
    assert engine.run(run).image is not None


def test_out_of_memory_on_cuda_suggests_offload(engine, tiny_sd, monkeypatch):
    loaded = engine.loaded_model(str(tiny_sd))
    monkeypatch.setattr(loaded, "device", torch.device("cuda"))  # only the advice reads it
    fail_at(monkeypatch, loaded.pipeline.unet, 1, lambda: torch.OutOfMemoryError("CUDA out of memory"))
    with pytest.raises(OutOfMemory, match="--offload model"):
        engine.run(GenerationRequest(prompt="x", model=str(tiny_sd), steps=2))


def test_out_of_memory_in_the_decode_suggests_tiles_and_in_the_steps_offload_then_sequential(engine, tiny_sd,
                                                                                          monkeypatch):
    loaded = engine.loaded_model(str(tiny_sd))

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(loaded.pipeline.vae, "decode", out_of_memory)
    with pytest.raises(OutOfMemory, match=r"after the last model call .*--vae tiled"):
        engine.run(GenerationRequest(prompt="x", model=str(tiny_sd), steps=2, preview_method="latent"))
    monkeypatch.undo()
    monkeypatch.setattr(loaded, "device", torch.device("cuda"))  # only the advice reads these
    monkeypatch.setattr(loaded, "offload", "model")
    fail_at(monkeypatch, loaded.pipeline.unet, 1, lambda: torch.OutOfMemoryError("CUDA out of memory"))
    with pytest.raises(OutOfMemory) as caught:
        engine.run(GenerationRequest(prompt="x", model=str(tiny_sd), steps=2))
    assert "--offload sequential" in str(caught.value) and "--offload model" not in str(caught.value)


def test_a_tiled_vae_is_recorded_and_the_snippet_tiles_too(tiny_sd, tmp_path):
    from diffusers_tui.engine import Engine

    engine = Engine(LoadOptions(vae="tiled"))
    result = engine.run(GenerationRequest(prompt="x", model=str(tiny_sd), steps=2, preview_method="none"))
    assert engine.loaded_model(str(tiny_sd)).pipeline.vae.use_tiling and result.recipe["vae_mode"] == "tiled"
    from PIL import Image

    with Image.open(engine.save(result, tmp_path)) as png:
        snippet = json.loads(png.text["diffusers-tui"])["reproduce"]
    assert "pipe.vae.enable_tiling()" in snippet
    with pytest.raises(RequestError, match="vae"):
        LoadOptions(vae="huge")


@pytest.mark.parametrize("call", [1, 2, 4])
def test_an_exception_at_any_step_says_where_and_the_next_run_works(engine, tiny_sd, monkeypatch, call):
    loaded = engine.loaded_model(str(tiny_sd))
    fail_at(monkeypatch, loaded.pipeline.unet, call, lambda: RuntimeError("kernel exploded"))
    run = GenerationRequest(prompt="a red square", model=str(tiny_sd), scheduler="DPM++ 2M", steps=4, seed=2)
    where = f"at model call {call} of 4" if call > 1 else "before the first model call finished"
    with pytest.raises(RunError, match=f"failed {where}: RuntimeError: kernel exploded"):
        engine.run(run)
    monkeypatch.undo()
    assert engine.run(run).image is not None


@pytest.mark.parametrize("model_fixture", ["tiny_sd", "tiny_ddpm"])
def test_nan_latents_stop_the_run_and_keep_the_last_good_preview(engine, model_fixture, request, monkeypatch):
    model = str(request.getfixturevalue(model_fixture))
    loaded = engine.loaded_model(model)
    unet = loaded.pipeline.unet if loaded.pipeline is not None else loaded.unet
    fail_at(monkeypatch, unet, 3, None, output=nan_output)
    seen = []
    result = engine.run(GenerationRequest(prompt="a red square", model=model, scheduler="Euler", steps=6, seed=3),
                        seen.append)
    assert result.stopped and "NaN" in result.stopped and "model call 3 of 6" in result.stopped
    assert result.image is None and not result.cancelled and result.model_calls == 3
    assert len(seen) == 2 and result.frames == tuple(seen)
    assert result.last_preview is engine.preview(seen[-1]) is result.shown_image
    monkeypatch.undo()
    assert engine.run(GenerationRequest(prompt="x", model=model, steps=2)).stopped is None


def test_nan_in_a_compared_lane_stops_that_lane_only(engine, tiny_ddpm, monkeypatch):
    from diffusers_tui.engine.comparison import ComparisonRequest, Lane

    loaded = engine.loaded_model(str(tiny_ddpm))

    def poison_first_sample(result):  # in the batched call, only lane 0 gets NaN
        sample = result.sample.clone()
        sample[0] = float("nan")
        return type(result)(sample=sample)

    fail_at(monkeypatch, loaded.unet, 2, None, output=poison_first_sample)
    base = GenerationRequest(model=str(tiny_ddpm), steps=4, seed=1)  # previews: a NaN check every call
    result = engine.compare(ComparisonRequest(base, (Lane("Euler", 4), Lane("DDIM", 4))))
    first, second = result.lanes
    assert first.result.stopped and "model call 2 of 4" in first.result.stopped and first.result.image is None
    assert second.result.stopped is None and second.result.image is not None


def test_schedules_that_cannot_finish_are_refused_before_the_model_runs(engine, tiny_ddpm, monkeypatch):
    loaded = engine.loaded_model(str(tiny_ddpm))
    calls = fail_at(monkeypatch, loaded.unet, 10**9, RuntimeError)
    # diffusers' DDIM on A1111's timesteps (offset 1) indexes past the training timesteps at 1000 steps
    with pytest.raises(RequestError, match=r"steps: DDIM \(diffusers\) cannot run 1000 steps on this model"):
        engine.run(GenerationRequest(model=str(tiny_ddpm), scheduler="DDIM (diffusers)", steps=1000))
    # diffusers' KDPM2 ancestral at 2 "leading" steps: a NaN noise level, which would make the run NaN
    with pytest.raises(RequestError, match=r"steps: DPM2 a \(diffusers\) cannot run 2 steps .*not finite"):
        engine.run(GenerationRequest(model=str(tiny_ddpm), scheduler="DPM2 a (diffusers)", steps=2, guidance=0.0))
    assert calls["calls"] == 0


def test_models_that_fail_to_load_each_get_a_clear_message(tmp_path, tiny_sd, tiny_bare_unet):
    missing = tmp_path / "missing-weights"
    shutil.copytree(tiny_sd, missing)
    (missing / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="could not load .*missing-weights"):
        loading.load(names.resolve(str(missing)), LoadOptions(device="cpu"))

    missing_part = tmp_path / "missing-vae"
    shutil.copytree(tiny_sd, missing_part)
    shutil.rmtree(missing_part / "vae")
    with pytest.raises(ModelLoadError, match=r"could not load .*missing-vae.*its vae/ folder is missing"):
        loading.load(names.resolve(str(missing_part)), LoadOptions(device="cpu"))

    # Weights cut short (an interrupted copy): the file and what is wrong with it, never --allow-pickle.
    for model, name, weights_at in ((tiny_bare_unet, "truncated", "."), (tiny_sd, "truncated-unet", "unet")):
        truncated = tmp_path / name
        shutil.copytree(model, truncated)
        weights = truncated / weights_at / "diffusion_pytorch_model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        with pytest.raises(ModelLoadError, match=r"could not load .*diffusion_pytorch_model.safetensors is cut "
                                                 r"short: it holds .* bytes of the .*download or copy it again") as error:
            loading.load(names.resolve(str(truncated)), LoadOptions(device="cpu"))
        assert "allow-pickle" not in str(error.value)

    # Configs that are not what a config is: the file and the value, not diffusers' guess (a Hub download).
    for change, words in ((lambda config: [1, 2], r"unet/config.json is not a JSON object \(it holds a list\)"),
                          (lambda config: {**config, "sample_size": 0}, "unet/config.json: sample_size 0 is not a "
                                                                         "positive size")):
        broken = tmp_path / f"broken-{len(words)}"
        shutil.copytree(tiny_sd, broken)
        config = broken / "unet" / "config.json"
        config.write_text(json.dumps(change(json.loads(config.read_text()))))
        with pytest.raises(ModelLoadError, match=words):
            loading.load(names.resolve(str(broken)), LoadOptions(device="cpu"))

    bad_index = tmp_path / "bad-index"
    shutil.copytree(tiny_sd, bad_index)
    (bad_index / "model_index.json").write_text("{ not json")
    with pytest.raises(ModelLoadError, match="cannot read .*model_index.json"):
        loading.load(names.resolve(str(bad_index)), LoadOptions(device="cpu"))


class _Payload:
    """Unpickling this writes a marker file: what a hostile checkpoint would do instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_hostile_pickles_and_shipped_code_are_never_run(tmp_path, tiny_sd, tiny_bare_unet):
    import pickle

    marker = tmp_path / "ran"
    pickled = tmp_path / "pickled-unet"
    shutil.copytree(tiny_bare_unet, pickled)
    (pickled / "diffusion_pytorch_model.safetensors").unlink()
    (pickled / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelLoadError, match="--allow-pickle"):
        loading.load(names.resolve(str(pickled)), LoadOptions(device="cpu"))
    single = tmp_path / "model.ckpt"
    single.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelLoadError, match="pickle checkpoint"):
        loading.load(names.resolve(str(single)), LoadOptions(device="cpu"))

    custom_component = tmp_path / "custom-component"
    shutil.copytree(tiny_sd, custom_component)
    (custom_component / "unet" / "my_unet.py").write_text(
        f"open({str(marker)!r}, 'w')\nfrom diffusers import UNet2DConditionModel as MyUNet\n")
    index = json.loads((custom_component / "model_index.json").read_text())
    (custom_component / "model_index.json").write_text(json.dumps({**index, "unet": ["my_unet", "MyUNet"]}))
    with pytest.raises(ModelLoadError, match="never runs"):
        loading.load(names.resolve(str(custom_component)), LoadOptions(device="cpu"))

    custom_pipeline = tmp_path / "custom-pipeline"
    shutil.copytree(tiny_sd, custom_pipeline)
    (custom_pipeline / "pipeline.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (custom_pipeline / "model_index.json").write_text(json.dumps({**index, "_class_name": "MyPipeline"}))
    with pytest.raises(ModelLoadError, match="custom pipelines .* are never run"):
        loading.load(names.resolve(str(custom_pipeline)), LoadOptions(device="cpu"))
    assert not marker.exists()


def test_unusable_model_names_are_explained_not_crashed_on():
    from diffusers_tui.engine.errors import ModelNotFoundError

    for name in ("x" * 5000, "bad\x00name", "../../../../etc", "/dev/null/x", "ünïcödé/mödel"):
        with pytest.raises((ModelNotFoundError, ModelLoadError)):
            loading.load(names.resolve(name), LoadOptions(device="cpu"))
