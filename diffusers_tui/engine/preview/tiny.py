"""TAESD preview decoders (diffusers' AutoencoderTiny): where one is found, and decoding with it.

Looked for, in order: a `taesd/` folder inside the model's own folder (the demo brings
one), the folder named by the `taesd_folder` setting (a TAESD folder, or one holding them
under their repo names), then the local Hugging Face cache by the usual repo ids.
Nothing is downloaded: when none is found, the load note gives the command that fetches it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

#: The published TAESD for each latent family, by Hugging Face repo id.
TAESD_REPOS = {
    "sd1": "madebyollin/taesd",
    "sdxl": "madebyollin/taesdxl",
    "sd3": "madebyollin/taesd3",
    "flux": "madebyollin/taef1",
}
FOLDER_NAME = "taesd"


def _is_tiny_autoencoder(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("_class_name") == "AutoencoderTiny"


def _cached(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached, no cache, or a broken one: all mean "not here"
        return None


def find_tiny_decoder(model_folder: Path | None, family: str, settings_folder: str | None) -> Path | None:
    """The folder of a TAESD for `family`, or None."""
    candidates: list[Path] = []
    if model_folder is not None:
        candidates.append(model_folder / FOLDER_NAME)
    repo = TAESD_REPOS.get(family)
    if settings_folder:
        folder = Path(settings_folder).expanduser()
        candidates.append(folder)
        if repo:
            candidates.append(folder / repo.split("/")[1])
    for candidate in candidates:
        if _is_tiny_autoencoder(candidate):
            return candidate
    return _cached(repo) if repo else None


def fetch_hint(family: str) -> str | None:
    """The command that puts this family's TAESD in the local cache, if one is published."""
    repo = TAESD_REPOS.get(family)
    return f"hf download {repo}" if repo else None


def load_tiny_decoder(folder: Path, device, dtype):
    from diffusers import AutoencoderTiny

    return AutoencoderTiny.from_pretrained(folder).to(device, dtype).eval()


def tiny_decode(tiny, latent: torch.Tensor, decoder=None) -> torch.Tensor:
    """(C, h, w) latent as the denoiser sees it -> (3, H, W) image in [-1, 1].

    Un-scaled the way a pipeline un-scales for its VAE, with the tiny decoder's own
    factors: 1 and 0 for the SD and SDXL TAESDs, which read the denoiser's latents as-is.
    `decoder` is a compiled copy of `tiny.decoder` to use instead (the decoder process's).
    """
    config = tiny.config
    latents = latent[None].to(tiny.device, tiny.dtype) / config.scaling_factor + (config.shift_factor or 0.0)
    return (decoder or tiny.decoder)(latents)[0]
