"""The tools' own sampler code (k-diffusion, A1111, ComfyUI) from a checkout, with the model wrappers it is handed."""

# Used by sampler_parity.py only. Only the sampling modules are executed: the model, tokenizer, training and
# UI code they import at the top is replaced by empty modules, or by the one function a sampler calls, taken
# from the checkout's own source with `ast` (so it is the tool's code). The modules are registered under their
# real names (k_diffusion.sampling, comfy.samplers...), because their relative and absolute imports look each
# other up there.

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import torch

KDIFFUSION_HELP = "git clone https://github.com/crowsonkb/k-diffusion DIR"
A1111_HELP = ("git clone --depth 1 https://github.com/AUTOMATIC1111/stable-diffusion-webui DIR "
              "(only DIR/modules/sd_samplers_extra.py, sd_samplers_timesteps_impl.py, sd_samplers_lcm.py and "
              "models/diffusion/uni_pc/uni_pc.py are read)")
#: A1111's UniPC settings at their defaults (modules/shared_options.py).
A1111_UNIPC_OPTIONS = {"uni_pc_variant": "bh1", "uni_pc_skip_type": "time_uniform", "uni_pc_order": 3,
                       "uni_pc_lower_order_final": True}
#: The paths of a ComfyUI checkout the benchmark reads.
COMFYUI_PATHS = ("comfy/k_diffusion", "comfy/extra_samplers", "comfy/samplers.py", "comfy/sample.py",
                 "comfy/model_sampling.py", "comfy/model_patcher.py", "comfy/ldm/modules/diffusionmodules/util.py")
COMFYUI_HELP = ("git clone https://github.com/Comfy-Org/ComfyUI DIR (or, from a clone elsewhere, only the paths "
                f"read: git -C CLONE archive HEAD {' '.join(COMFYUI_PATHS)} | tar -x -C DIR)")


def _stub(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:  # `import comfy.model_patcher` then reads it as an attribute of comfy
        setattr(sys.modules[parent], child, module)
    return module


def _package(name: str, folder: Path) -> types.ModuleType:
    """A package whose __init__ is not run (k_diffusion's imports its models and training code)."""
    module = _stub(name, __path__=[str(folder)])
    module.__package__ = name
    return module


def _load(name: str, path: Path) -> types.ModuleType:
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the checkout")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    spec.loader.exec_module(module)
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def _function_from(path: Path, function: str, namespace: dict):
    """One top-level function (or class) of a source file, compiled alone: the tool's code without its
    module's imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == function]
    if not found:
        raise LookupError(f"{path} has no function {function}")
    exec(compile(ast.Module(body=found, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace[function]


def _stub_missing(name: str, **attributes) -> None:
    """A stand-in only where the real package is not installed (torchvision, torchdiffeq)."""
    try:
        importlib.import_module(name)
    except ImportError:
        parts = name.split(".")
        for i in range(1, len(parts)):
            sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
        _stub(name, **attributes)


def _never(*args, **kwargs):
    raise RuntimeError("a stand-in was called: this code path is not one the benchmark runs")


def load_kdiffusion(root: str | Path) -> SimpleNamespace:
    """k_diffusion.sampling and k_diffusion.external (CompVisDenoiser) from ROOT/k_diffusion."""
    folder = Path(root) / "k_diffusion"
    if not (folder / "sampling.py").is_file():
        raise FileNotFoundError(f"{folder}/sampling.py not found; get it with: {KDIFFUSION_HELP}")
    # utils imports torchvision (image helpers for training) and sampling imports torchdiffeq (log_likelihood):
    # neither is on a sampler's path.
    _stub_missing("torchvision.transforms.functional")
    _stub_missing("torchdiffeq", odeint=_never)
    _package("k_diffusion", folder)
    utils = _load("k_diffusion.utils", folder / "utils.py")
    sampling = _load("k_diffusion.sampling", folder / "sampling.py")
    external = _load("k_diffusion.external", folder / "external.py")
    return SimpleNamespace(sampling=sampling, external=external, utils=utils, root=folder)


def load_a1111_extra(root: str | Path) -> types.ModuleType:
    """A1111's own samplers beside k-diffusion's (ROOT/modules/sd_samplers_extra.py: Restart); it imports
    k_diffusion.sampling, so load_kdiffusion comes first."""
    if "k_diffusion.sampling" not in sys.modules:
        raise RuntimeError("A1111's sd_samplers_extra.py needs k-diffusion: give --kdiffusion DIR too")
    path = Path(root) / "modules" / "sd_samplers_extra.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; get it with: {A1111_HELP}")
    return _load("a1111_sd_samplers_extra", path)  # not as `modules.`: that name is too common to take


def load_a1111_own(root: str | Path) -> SimpleNamespace:
    """A1111's timestep samplers (modules/sd_samplers_timesteps_impl.py: ddim, plms, unipc and, from 1.10,
    ddim_cfgpp, with its UniPC module) and its LCM (sd_samplers_lcm.py: LCMCompVisDenoiser, sample_lcm).
    They import k_diffusion, so load_kdiffusion comes first."""
    if "k_diffusion.sampling" not in sys.modules:
        raise RuntimeError("A1111's samplers need k-diffusion: give --kdiffusion DIR too")
    folder = Path(root) / "modules"
    impl = folder / "sd_samplers_timesteps_impl.py"
    if not impl.is_file():
        raise FileNotFoundError(f"{impl} not found; get it with: {A1111_HELP}")
    # The timestep samplers import `modules.shared` (for the UniPC settings) and the UniPC module by its
    # package path; both are set up under A1111's names for the length of the load.
    for name in ("modules", "modules.models", "modules.models.diffusion", "modules.models.diffusion.uni_pc"):
        _stub(name, __path__=[])
    _stub("modules.shared", opts=SimpleNamespace(**A1111_UNIPC_OPTIONS))
    _load("modules.models.diffusion.uni_pc.uni_pc", folder / "models" / "diffusion" / "uni_pc" / "uni_pc.py")
    timesteps = _load("a1111_sd_samplers_timesteps_impl", impl)
    kd = sys.modules["k_diffusion.sampling"]
    namespace = {"torch": torch, "utils": sys.modules["k_diffusion.utils"], "sampling": kd,
                 "DiscreteEpsDDPMDenoiser": sys.modules["k_diffusion.external"].DiscreteEpsDDPMDenoiser,
                 "default_noise_sampler": kd.default_noise_sampler, "trange": kd.trange,
                 "shared": SimpleNamespace(sd_model=SimpleNamespace(device="cpu"))}
    lcm_path = folder / "sd_samplers_lcm.py"
    lcm_denoiser = _function_from(lcm_path, "LCMCompVisDenoiser", namespace)
    sample_lcm = _function_from(lcm_path, "sample_lcm", namespace)
    return SimpleNamespace(timesteps=timesteps, lcm_denoiser=lcm_denoiser, sample_lcm=sample_lcm)


def load_comfyui(root: str | Path) -> SimpleNamespace:
    """ComfyUI's samplers (comfy/k_diffusion, comfy/extra_samplers), its KSampler path (comfy/samplers.py,
    comfy/sample.py) and its model_sampling, from ROOT/comfy."""
    folder = Path(root) / "comfy"
    if not (folder / "k_diffusion" / "sampling.py").is_file():
        raise FileNotFoundError(f"{folder}/k_diffusion/sampling.py not found; get it with: {COMFYUI_HELP}")
    _package("comfy", folder)
    _package("comfy.k_diffusion", folder / "k_diffusion")
    _package("comfy.extra_samplers", folder / "extra_samplers")
    # The model, memory and hook machinery samplers.py and sample.py import: none of it runs on the path
    # KSAMPLER.sample -> sampler function -> our model wrapper.
    for name in ("model_management", "sampler_helpers", "patcher_extension", "hooks", "context_windows",
                 "memory_management"):
        _stub(f"comfy.{name}")
    # Newer checkouts draw their progress bars through comfy.utils.model_trange.
    from tqdm.auto import trange

    _stub("comfy.utils", model_trange=trange)
    # The CFG++ samplers register their post-CFG hook through this one function of model_patcher.py.
    post_cfg = _function_from(folder / "model_patcher.py", "set_model_options_post_cfg_function", {})
    _stub("comfy.model_patcher", set_model_options_post_cfg_function=post_cfg)
    # model_sampling.py builds its β table with make_beta_schedule (comfy/ldm/.../util.py, which imports einops).
    import numpy as np

    util = folder / "ldm" / "modules" / "diffusionmodules" / "util.py"
    betas = _function_from(util, "make_beta_schedule", {"torch": torch, "np": np, "math": __import__("math")})
    for name in ("comfy.ldm", "comfy.ldm.modules", "comfy.ldm.modules.diffusionmodules"):
        _stub(name, __path__=[])
    _stub("comfy.ldm.modules.diffusionmodules.util", make_beta_schedule=betas)
    model_sampling = _load("comfy.model_sampling", folder / "model_sampling.py")
    _load("comfy.k_diffusion.utils", folder / "k_diffusion" / "utils.py")
    _load("comfy.k_diffusion.deis", folder / "k_diffusion" / "deis.py")
    _load("comfy.k_diffusion.sa_solver", folder / "k_diffusion" / "sa_solver.py")
    sampling = _load("comfy.k_diffusion.sampling", folder / "k_diffusion" / "sampling.py")
    _load("comfy.extra_samplers.uni_pc", folder / "extra_samplers" / "uni_pc.py")
    samplers = _load("comfy.samplers", folder / "samplers.py")
    sample = _load("comfy.sample", folder / "sample.py")
    return SimpleNamespace(sampling=sampling, samplers=samplers, sample=sample, model_sampling=model_sampling,
                           root=folder)


# ----- A1111's noise (modules/rng.py, sd_samplers_common.py, sd_samplers_kdiffusion.py), "RNG: CPU" -----


class ImageRNG:
    """A1111's ImageRNG for one image with RNG source CPU and no ENSD: one CPU generator seeded with the
    seed draws the starting noise (`next()` the first time), then every later `next()` continues it."""

    def __init__(self, shape, seed: int):
        self.shape = tuple(shape[1:])  # per image; A1111 stacks the batch
        self.generator = torch.Generator("cpu").manual_seed(int(seed))

    def next(self) -> torch.Tensor:
        return torch.randn(self.shape, generator=self.generator, device="cpu")[None]


class TorchHijack:
    """A1111's TorchHijack: stands for `torch` inside k_diffusion.sampling, answering randn_like from the
    image's generator whatever x is, and passing everything else through to torch."""

    def __init__(self, rng: ImageRNG):
        self.rng = rng

    def __getattr__(self, item):
        if item == "randn_like":
            return lambda x: self.rng.next()
        return getattr(torch, item)


@contextmanager
def a1111_sampling(sampling_module, rng: ImageRNG):
    """k_diffusion.sampling.torch = TorchHijack(p), and torchsde's draws from A1111's randn_local (a fresh CPU
    generator per seed, moved to the device), for the length of one run."""
    from torchsde._brownian import brownian_interval

    def randn_local(size, dtype, device, seed):
        generator = torch.Generator("cpu").manual_seed(int(seed))
        return torch.randn(size, device="cpu", generator=generator).to(device=device, dtype=dtype)

    saved_torch, saved_randn = sampling_module.torch, brownian_interval._randn
    sampling_module.torch, brownian_interval._randn = TorchHijack(rng), randn_local
    try:
        yield
    finally:
        sampling_module.torch, brownian_interval._randn = saved_torch, saved_randn


def a1111_alphas_cumprod(config: dict) -> torch.Tensor:
    """ᾱ as an SD checkpoint holds it in A1111 (ldm DDPM.register_schedule): β in float64 from the LDM config,
    cumprod in float64, stored as float32, which k-diffusion's CompVisDenoiser reads."""
    start, end, count = config["beta_start"], config["beta_end"], config["num_train_timesteps"]
    if config.get("beta_schedule") == "scaled_linear":  # LDM's "linear" is linear in sqrt β
        betas = torch.linspace(start ** 0.5, end ** 0.5, count, dtype=torch.float64) ** 2
    elif config.get("beta_schedule") == "linear":
        betas = torch.linspace(start, end, count, dtype=torch.float64)
    else:
        raise ValueError(f"no A1111 β table for {config.get('beta_schedule')!r}")
    return torch.cumprod(1 - betas, dim=0).float()


def comfy_model_sampling(comfyui: SimpleNamespace, config: dict, flow: bool):
    """The model_sampling object ComfyUI builds for this model (model_base.model_sampling): discrete ε with
    the checkpoint's β settings, or SD3's discrete flow with its shift."""
    ms = comfyui.model_sampling
    if flow:
        settings = {"shift": config.get("shift", 1.0), "multiplier": 1000}
        base, kind = ms.ModelSamplingDiscreteFlow, ms.CONST
    else:
        if config.get("beta_schedule") != "scaled_linear":
            raise ValueError(f"no ComfyUI β table for {config.get('beta_schedule')!r}")
        # ComfyUI's "linear" β schedule is linear in sqrt β: diffusers' scaled_linear.
        settings = {"beta_schedule": "linear", "linear_start": config["beta_start"],
                    "linear_end": config["beta_end"], "timesteps": config["num_train_timesteps"]}
        base, kind = ms.ModelSamplingDiscrete, ms.EPS
    model_config = SimpleNamespace(sampling_settings=settings)
    return type("ModelSampling", (base, kind), {})(model_config)


# ----- the model as each tool's sampler sees it -----


class CompVisModel:
    """What k-diffusion's CompVisDenoiser wraps in A1111 (an LDM): ᾱ, and apply_model(x, t, cond) giving ε.
    `net(x, t)` is the network on a [cond, uncond] batch."""

    device = "cpu"

    def __init__(self, net, alphas_cumprod: torch.Tensor):
        self.net, self.alphas_cumprod = net, alphas_cumprod

    def apply_model(self, x, t, cond=None):
        return self.net(x, t)


class A1111TimestepsCFG:
    """A1111's CFGDenoiserTimesteps as its timestep samplers see it: called (x, t), the network's ε on a
    [cond, uncond] batch, combined at cond_scale · cond_scale_miltiplier; the unconditional ε is kept as
    last_noise_uncond (DDIM CFG++ sets the multiplier to 1/12.5). `.inner_model.inner_model.alphas_cumprod`
    is where the samplers read ᾱ."""

    def __init__(self, model: "CompVisModel", guidance: float):
        self.inner_model = SimpleNamespace(inner_model=model)
        self.model, self.guidance = model, guidance
        self.cond_scale_miltiplier, self.need_last_noise_uncond, self.last_noise_uncond = 1.0, False, None

    def __call__(self, x, t, **extra_args):
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
        eps = self.model.net(torch.cat([x, x]), torch.cat([t, t]))
        cond, uncond = eps[:1], eps[1:]
        self.last_noise_uncond = uncond
        return uncond + (cond - uncond) * self.guidance * self.cond_scale_miltiplier


class A1111CFGDenoiser:
    """A1111's CFGDenoiser with default settings: x and σ doubled into one [cond, uncond] batch through the
    CompVisDenoiser, then uncond + (cond - uncond)·scale on the denoised estimates."""

    def __init__(self, denoiser, guidance: float):
        self.denoiser, self.guidance = denoiser, guidance

    def __call__(self, x, sigma, **extra_args):
        x_out = self.denoiser(torch.cat([x, x]), torch.cat([sigma, sigma]))
        uncond = x_out[1:]
        return uncond + (x_out[:1] - uncond) * self.guidance


class ComfyBaseModel:
    """model_base.BaseModel._apply_model on a [cond, uncond] batch: calculate_input, model_sampling.timestep
    (the nearest training timestep; flow: σ·1000), the network, calculate_denoised."""

    def __init__(self, net, model_sampling):
        self.net, self.model_sampling = net, model_sampling

    def cond_uncond(self, x, sigma):
        xs, sigmas = torch.cat([x, x]), torch.cat([sigma, sigma])
        xc = self.model_sampling.calculate_input(sigmas, xs)
        t = self.model_sampling.timestep(sigmas).float()
        out = self.model_sampling.calculate_denoised(sigmas, self.net(xc, t).float(), xs)
        return out[:1], out[1:]


class ComfyGuider:
    """CFGGuider as the samplers see it: called (x, σ, model_options, seed), it runs comfy.samplers.cfg_function
    (CFG, then the post-CFG hooks the CFG++ samplers register); .inner_model.model_sampling and
    .model_patcher.get_model_object("model_sampling") are what samplers read."""

    def __init__(self, comfyui: SimpleNamespace, base: ComfyBaseModel, cfg: float):
        self.comfyui, self.inner_model, self.cfg = comfyui, base, cfg
        self.model_patcher = SimpleNamespace(get_model_object=lambda name: getattr(base, name))

    def __call__(self, x, timestep, model_options={}, seed=None):  # noqa: B006 - ComfyUI's signature
        cond, uncond = self.inner_model.cond_uncond(x, timestep)
        return self.comfyui.samplers.cfg_function(self.inner_model, cond, uncond, self.cfg, x, timestep,
                                                  model_options=model_options, cond=[], uncond=[])
