"""The project's own sampling engine in σ space (the shape k-diffusion and ComfyUI share).

- model_sigmas.ModelSigmas: a model's training σ table, σ <-> timestep by each tool's rule.
- schedules: plain functions (ModelSigmas, steps) -> σ list ending in 0, one per named schedule
  and per tool where tools disagree (A1111's Beta is not ComfyUI's beta).
- samplers_*: samplers written as generators. A sampler is called as
  `sampler(x, sigmas, context)`; each time it needs the model it yields `(x, sigma)` and is sent
  the denoised estimate D(x, σ) back; it returns the final sample. One yield is one model call,
  which is what previews, progress and cancel count.
- noise: where a sampler's fresh noise comes from (A1111 CPU/GPU/NV, ComfyUI), and a Brownian
  tree per image for the SDE samplers. Noise is never drawn from a global generator.
- catalogue: every sampler by the name its tool gives it, with that tool's defaults.
- stand_in: a diffusers-scheduler stand-in that steps a sampler, so diffusers pipelines and the
  hand-stepped UNet loop run the engine's samplers unchanged.
"""

