"""The factor values of the planted worlds in which the ground-truth and steering tests know which
latent should detect (or steer) which colour and shape."""

from __future__ import annotations

COLORS = ("red", "green", "blue", "navy")
SHAPES = ("circle", "square", "star")
