"""Several collages stacked into one image, so a report shows a whole set with one link."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from clipsae.interpret.collage import BACKGROUND


def stack_vertically(images: Sequence[Image.Image]) -> Image.Image:
    """``images`` top to bottom, left-aligned on the collages' background, as wide as the widest."""
    if not images:
        raise ValueError("no images to stack")
    width = max(image.width for image in images)
    sheet = Image.new("RGB", (width, sum(image.height for image in images)), BACKGROUND)
    top = 0
    for image in images:
        sheet.paste(image.convert("RGB"), (0, top))
        top += image.height
    return sheet
