"""diffusers-tui: run and study diffusion models from a terminal."""
