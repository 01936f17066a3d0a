"""What the VLM is asked, and how its free-text answer becomes the fields of a name.

Real models wrap JSON in ``` fences, add a sentence before or after it, or drop a field; the
parser accepts the first JSON object in the text that carries every field as a non-empty string,
and anything else is malformed (the caller re-asks once).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

from clipsae.interpret.vlm.config import LANGUAGES


def answer_fields(languages: Sequence[str]) -> tuple[str, ...]:
    """The answer's keys in CSV order: every label, then every description."""
    return tuple(f"label_{code}" for code in languages) + tuple(
        f"description_{code}" for code in languages
    )


def build_prompt(languages: Sequence[str]) -> str:
    """The instruction sent with every collage; it is part of the cache key, so keep it stable."""
    keys = "\n".join(
        [f'- "label_{code}": a label of 1-4 words in {LANGUAGES[code]}' for code in languages]
        + [f'- "description_{code}": one sentence in {LANGUAGES[code]}' for code in languages]
    )
    return (
        "The image is a grid of the images that most strongly activate one feature of a sparse "
        "autoencoder trained on CLIP image embeddings; the number in each tile's corner is the "
        "feature's activation on it. Name the concept these images share (an object, a scene, a "
        "colour, a texture, a style, ...). If they share no clear concept, say so in the label.\n"
        "Answer with one JSON object and nothing else, with exactly these keys:\n"
        f"{keys}"
    )


def parse_answer(content: str, fields: Sequence[str]) -> dict[str, str] | None:
    """The first JSON object in ``content`` holding every field as a non-empty string, or None.

    Extra keys are ignored, runs of whitespace in values become one space.
    """
    for obj in json_values(content, "{"):
        if isinstance(obj, dict) and all(
            isinstance(obj.get(field), str) and obj[field].strip() for field in fields
        ):
            return {field: " ".join(obj[field].split()) for field in fields}
    return None


def json_values(content: str, opener: str) -> Iterator[object]:
    """Every JSON value that starts at an ``opener`` (``{`` or ``[``) of ``content``, in order.

    Scanning every opener with ``raw_decode`` finds a value inside fences or prose without
    guessing at their shape; a caller takes the first one of the shape it expects.
    """
    decoder = json.JSONDecoder()
    start = content.find(opener)
    while start != -1:
        try:
            value, _ = decoder.raw_decode(content, start)
        except json.JSONDecodeError:
            value = None
        else:
            yield value
        start = content.find(opener, start + 1)


def message_text(response: object) -> str:
    """The assistant's text in a chat-completions response; '' where the response has none.

    Some servers give ``content`` as a list of typed parts rather than a string.
    """
    try:
        content = response["choices"][0]["message"]["content"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return ""
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""
