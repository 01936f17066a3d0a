"""Interpretation of latents: per-latent statistics and top images, collages, names."""
