"""Latent tensors to PIL images: the one conversion every preview method and loop ends in."""

from __future__ import annotations

import torch


def tensor_to_image(image: torch.Tensor):
    """A (3, H, W) tensor in [-1, 1] (any device, any float dtype) to a PIL image."""
    from PIL import Image

    array = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return Image.fromarray(array.permute(1, 2, 0).cpu().numpy())
