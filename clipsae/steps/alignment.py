"""Step ``sae_alignment``: how far two SAEs trained alike with different seeds learn the same
dictionary (``clipsae.evaluate.alignment``).

Decoder rows and encoder columns are matched one-to-one by cosine (Hungarian). Beside them, the
first SAE's decoder matched against as many random Gaussian directions (seeded) gives the level
chance reaches in this dimension, so a mean cosine reads against it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from clipsae.evaluate.alignment import THRESHOLD, match_directions, sae_alignment
from clipsae.runtime.atomic import atomic_write_json
from clipsae.sae import load_sae
from clipsae.sae.io import CFG_FILE

# The random directions' seed: not one an SAE is trained with (0, 1, ...), whose random
# initial dictionary would share directions with them.
RANDOM_SEED = 1_000_003


def _training_seed(sae_dir: Path) -> int | None:
    """The trainer's seed, as ``cfg.json`` records the recipe (absent from hand-made SAEs)."""
    return json.loads((sae_dir / CFG_FILE).read_text()).get("train", {}).get("seed")


def align_saes(
    *,
    sae_a: Path,
    sae_b: Path,
    out_json: Path,
    names: tuple[str, str] | None = None,
    threshold: float = THRESHOLD,
    seed: int = RANDOM_SEED,
) -> dict:
    """``names``: how the report calls the two SAEs (the config's entry names)."""
    a, b = load_sae(Path(sae_a), "cpu").eval(), load_sae(Path(sae_b), "cpu").eval()
    if a.W_dec.shape != b.W_dec.shape:
        raise ValueError(
            f"{sae_a} and {sae_b} have dictionaries of different shapes "
            f"({tuple(a.W_dec.shape)} and {tuple(b.W_dec.shape)}): they are not trained alike"
        )
    random = torch.randn(a.W_dec.shape, generator=torch.Generator().manual_seed(seed))
    result = {
        **sae_alignment(a, b, threshold),
        "random": match_directions(a.W_dec, random, threshold),
        "d_sae": a.cfg.d_sae,
        "seeds": [_training_seed(Path(sae_a)), _training_seed(Path(sae_b))],
    }
    if names is not None:
        result["saes"] = list(names)
    atomic_write_json(result, Path(out_json))
    return result
