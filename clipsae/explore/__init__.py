"""Exploring a trained SAE: an image's latents, latents for a text, similar images, clusters.

It sits with ``clipsae.steps`` on top of the stages: it reads what the workflow wrote under
``results/`` (see ``clipsae.explore.run``) and reuses the stages' own code to compute the rest.
"""
