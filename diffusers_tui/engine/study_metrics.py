"""How far each lane of a comparison is from its reference: RMSE in pixels, L2 in latent space, SSIM, and
the trajectory of its x0 estimates towards the reference's final latent.

The formulas (the README states them too):
  rmse        sqrt(mean((a - b)^2)) over the two final RGB images' 0-255 values (the reference resized to
              the lane's size when they differ);
  latent_l2   ||z - z_ref||_2, the Euclidean distance between the two final latents (every element);
  ssim        scikit-image's structural_similarity of the two RGB images with its defaults (a 7x7 uniform
              window, K1 = 0.01, K2 = 0.03, data range 255), averaged over the channels; 1 is identical;
  trajectory  for each recorded model call k of n: (k / n, ||x0_k - z_ref||_2), the distance of the
              lane's denoised estimate at that call to the reference's final latent.
The latent figures need both runs recorded (preview method other than none) and the same latent shape.
"""

from __future__ import annotations

from dataclasses import replace

from diffusers_tui.engine.comparison import LaneResult, image_distance


def final_latent(lane: LaneResult):
    """The lane's last recorded sample (its final latent when the run finished), or None."""
    if not lane.frames or lane.frames[-1].step != lane.result.total_calls or lane.result.cancelled:
        return None
    return lane.frames[-1].latents.of("noisy").float()


def ssim(image, reference) -> float:
    """Structural similarity of two PIL images (see the module's formulas)."""
    import numpy as np
    from skimage.metrics import structural_similarity

    if reference.size != image.size:
        reference = reference.resize(image.size)
    a = np.asarray(image.convert("RGB"))
    b = np.asarray(reference.convert("RGB"))
    side = min(a.shape[:2])
    window = 7 if side >= 7 else (side if side % 2 else side - 1)  # the default, unless the image is smaller
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=window))


def trajectory(lane: LaneResult, reference_latent) -> tuple[tuple[float, float], ...]:
    """(fraction of the model calls spent, distance of that call's x0 estimate to `reference_latent`)."""
    points = []
    for frame in lane.frames:
        x0 = frame.latents.of("x0").float()
        if x0.shape != reference_latent.shape:
            return ()
        points.append((frame.step / frame.total, float((x0 - reference_latent).norm())))
    return tuple(points)


def measure(request, lanes: list[LaneResult], references: list[LaneResult]) -> list[LaneResult]:
    """Each lane with its metrics against its own reference (ComparisonRequest.reference_key)."""
    measured = []
    finals = {id(reference): final_latent(reference) for reference in references}
    by_key = {reference.lane: reference for reference in references}
    for lane in lanes:
        reference = by_key.get(request.reference_key(lane.lane)) if request.reference is not None else None
        if reference is None or lane.result.image is None or reference.result.image is None:
            measured.append(lane)
            continue
        metrics = {"rmse": image_distance(lane.result.image, reference.result.image),
                   "ssim": ssim(lane.result.image, reference.result.image)}
        target, own = finals.get(id(reference)), final_latent(lane)
        path = ()
        if target is not None and own is not None and own.shape == target.shape:
            metrics["latent_l2"] = float((own - target).norm())
            path = trajectory(lane, target)
        measured.append(replace(lane, distance=metrics["rmse"], metrics=metrics, trajectory=path))
    return measured
