"""Model sources: demo, Hub ids from the local cache only, folders, single files, refusals."""

import shutil

import pytest

from diffusers_tui.engine.models import catalog, loading, names
from diffusers_tui.engine.errors import ModelLoadError, ModelNotFoundError
from diffusers_tui.engine import LoadOptions


def test_demo_names_resolve_to_folders_inside_the_package():
    for name in ("demo", "demo-sd", "demo-ddpm"):
        source = names.resolve(name)
        assert source.kind == "demo" and (source.path / "model_index.json").exists()
    assert names.describe_folder(names.resolve("demo").path)[0] == "text-to-image"
    assert names.describe_folder(names.resolve("demo-ddpm").path)[0] == "unet"


def test_hub_id_loads_from_the_local_cache_without_network(hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = names.resolve("tiny-org/tiny-sd")
    assert source.kind == "hub-cache" and source.revision == "0123456789abcdef0123456789abcdef01234567"
    loaded = loading.load(source, LoadOptions(device="cpu"))
    assert loaded.mode == "text-to-image" and loaded.pipeline is not None


def test_missing_hub_id_names_the_model_and_the_download_command(hf_cache):
    with pytest.raises(ModelNotFoundError) as caught:
        names.resolve("google/ddpm-cat-256")
    message = str(caught.value)
    assert "'google/ddpm-cat-256'" in message and "hf download google/ddpm-cat-256" in message
    assert str(hf_cache) in message


def test_unknown_names_and_paths_are_explained(tmp_path):
    with pytest.raises(ModelNotFoundError, match="not a built-in model"):
        names.resolve("no such model")
    with pytest.raises(ModelLoadError, match="not a diffusers model folder"):
        loading.load(names.resolve(str(tmp_path)), LoadOptions(device="cpu"))
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hi")
    with pytest.raises(ModelLoadError, match="not a checkpoint"):
        names.resolve(str(text_file))


def test_pickle_only_weights_are_refused_unless_allowed(tmp_path):
    from tests.conftest import build_tiny_unet

    folder = tmp_path / "pickled-unet"
    build_tiny_unet().save_pretrained(folder, safe_serialization=False)
    with pytest.raises(ModelLoadError, match="--allow-pickle"):
        loading.load(names.resolve(str(folder)), LoadOptions(device="cpu"))
    loaded = loading.load(names.resolve(str(folder)), LoadOptions(device="cpu", allow_pickle=True))
    assert loaded.mode == "unet"


def test_corrupt_weights_give_a_load_error(tmp_path, tiny_bare_unet):
    folder = tmp_path / "corrupt"
    shutil.copytree(tiny_bare_unet, folder)
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="could not load"):
        loading.load(names.resolve(str(folder)), LoadOptions(device="cpu"))


def test_single_file_checkpoints_need_a_config_and_pickles_are_refused(tmp_path):
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelLoadError, match="--config DIR"):
        loading.load(names.resolve(str(checkpoint)), LoadOptions(device="cpu"))
    pickled = tmp_path / "model.ckpt"
    pickled.write_bytes(b"\x00" * 16)
    with pytest.raises(ModelLoadError, match="pickle checkpoint"):
        loading.load(names.resolve(str(pickled)), LoadOptions(device="cpu"))


def test_bad_device_dtype_offload_name_the_option():
    from diffusers_tui.engine.errors import RequestError

    for kwargs, field in (({"device": "tpu"}, "device"), ({"dtype": "int8"}, "dtype"), ({"offload": "disk"}, "offload")):
        with pytest.raises(RequestError) as caught:
            LoadOptions(**kwargs)
        assert caught.value.field == field
    with pytest.raises(ModelLoadError, match="no CUDA"):
        loading.pick_device("cuda:0")


def test_dtype_auto_is_float32_on_cpu():
    import torch

    assert loading.pick_dtype("auto", torch.device("cpu")) == torch.float32
    assert loading.pick_dtype("auto", torch.device("cuda")) == torch.float16
    assert loading.pick_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16


def test_models_lists_demo_models_cached_repos_and_folders(hf_cache, tiny_ddpm):
    found = {m.name: m for m in catalog.list_models((str(tiny_ddpm.parent),))}
    assert found["demo"].kind == "text-to-image" and found["demo-ddpm"].kind == "unet"
    assert found["tiny-org/tiny-sd"].source == "hub-cache"
    assert found[str(tiny_ddpm)].kind == "unet" and found[str(tiny_ddpm)].size_bytes > 0


def test_single_file_checkpoints_load_with_the_config_folder(tmp_path, tiny_sd, monkeypatch):
    """Wiring only: converting a diffusers model back to an original single file needs a
    script diffusers does not ship, so the call into from_single_file is observed instead."""
    import diffusers

    seen = {}

    def from_single_file(path, **kwargs):
        seen.update(kwargs, path=path)
        return diffusers.DiffusionPipeline.from_pretrained(tiny_sd)

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_single_file", from_single_file)
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\x00" * 16)
    loaded = loading.load(names.resolve(str(checkpoint)), LoadOptions(device="cpu", config_dir=str(tiny_sd)))
    assert loaded.mode == "text-to-image" and loaded.source.kind == "single-file"
    assert seen["path"] == str(checkpoint) and seen["config"] == str(tiny_sd)
    assert seen["local_files_only"] is True and seen["safety_checker"] is None


@pytest.mark.parametrize("index, why", [
    ({"_class_name": "KandinskyV22CombinedPipeline", "prior_text_encoder": ["transformers", "CLIPTextModelWithProjection"],
      "unet": ["diffusers", "UNet2DConditionModel"]}, "two-stage"),
    ({"_class_name": "ScoreSdeVePipeline", "unet": ["diffusers", "UNet2DModel"],
      "scheduler": ["diffusers", "ScoreSdeVeScheduler"]}, "predictor-corrector"),
    ({"_class_name": "StableDiffusionImg2ImgPipeline", "text_encoder": ["transformers", "CLIPTextModel"]}, "given image"),
    ({"_class_name": "CogVideoXPipeline", "text_encoder": ["transformers", "T5EncoderModel"]}, "video"),
])
def test_pipelines_that_cannot_run_are_listed_with_why_and_refused_at_load(tmp_path, index, why):
    import json

    from diffusers_tui.engine import Engine, ModelLoadError

    folder = tmp_path / "models" / index["_class_name"]
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    engine = Engine(model_folders=(str(tmp_path / "models"),))
    listed = {info.name: info for info in engine.models()}[str(folder)]
    assert listed.kind == "cannot run" and why in listed.reason
    with pytest.raises(ModelLoadError, match=why):
        engine.load(str(folder))


def test_auto_dtype_is_each_familys_documented_one_on_cuda():
    import torch

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert loading.pick_dtype("auto", cuda, "FluxPipeline") == torch.bfloat16
    assert loading.pick_dtype("auto", cuda, "StableDiffusion3Pipeline") == torch.bfloat16
    assert loading.pick_dtype("auto", cuda, "QwenImagePipeline") == torch.bfloat16
    assert loading.pick_dtype("auto", cuda, "StableDiffusionXLPipeline") == torch.float16
    assert loading.pick_dtype("auto", cpu, "FluxPipeline") == torch.float32
    assert loading.pick_dtype("float16", cuda, "FluxPipeline") == torch.float16  # asked for: kept
