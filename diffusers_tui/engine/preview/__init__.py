"""Latents to preview pictures: the method a request names, applied without touching the live latent.

Methods: `linear` (a latent->RGB map at latent resolution, see preview.latent), `vae`
(a full decode, see preview.vae), `auto` (the map), `none`.
"""

from __future__ import annotations


def preview_image(loaded, latents, method: str):
    """A PIL image of `latents` (a batch; the first is shown) by `method`."""
    if method == "vae":
        from diffusers_tui.engine.preview.vae import decode_preview

        return decode_preview(loaded, latents)
    return loaded.previewer.to_image(latents)
