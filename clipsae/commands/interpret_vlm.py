"""Name latents by showing their collages to a vision-language model (EN + RU labels).

Works with any OpenAI-compatible /v1/chat/completions endpoint: OpenRouter by default, a local
vLLM / Ollama / LM Studio server with --base-url http://localhost:8000/v1 --no-api-key. The key
is read from the environment variable given by --api-key-env, never from the command line.
Answers are cached under --cache, so a rerun pays for no request twice. Without the key the
command still succeeds and marks every uncached latent 'skipped'.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from clipsae.interpret.vlm import VLMAuthError, VLMConfig, run_vlm_naming

log = logging.getLogger(__name__)

# Flag -> VLMConfig key, for the flags given a value; the rest keep the config defaults.
_CONFIG_FLAGS = (
    "base_url", "model", "api_key_env", "max_requests", "concurrency", "timeout_s", "temperature",
)  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collages", type=Path, required=True, help="folder of latent_NNNNN.jpg")
    parser.add_argument("--out", type=Path, required=True, help="output CSV")
    parser.add_argument("--cache", type=Path, required=True, help="answer cache folder")
    parser.add_argument("--summary", type=Path, help="also write counts and unnamed latents (JSON)")
    parser.add_argument("--base-url", help=f"endpoint base URL (default {VLMConfig.base_url})")
    parser.add_argument("--model", help=f"model name (default {VLMConfig.model})")
    key = parser.add_mutually_exclusive_group()
    default_env = VLMConfig.api_key_env
    key.add_argument("--api-key-env", metavar="VAR", help=f"key variable (default {default_env})")
    key.add_argument("--no-api-key", action="store_true", help="send no key (a local server)")
    parser.add_argument("--max-requests", type=int, help="request budget for this run")
    parser.add_argument("--concurrency", type=int, help="requests in flight at once")
    parser.add_argument("--timeout-s", type=float, help="seconds to wait for one answer")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--languages", nargs="+", help="answer languages (default en ru)")


def vlm_config(args: argparse.Namespace) -> VLMConfig:
    """The VLMConfig the flags describe, validated like a workflow config's ``interpret.vlm``."""
    mapping = {
        flag: getattr(args, flag) for flag in _CONFIG_FLAGS if getattr(args, flag) is not None
    }
    if args.no_api_key:
        mapping["api_key_env"] = None
    if args.languages:
        mapping["languages"] = args.languages
    return VLMConfig.from_mapping(mapping, where="interpret-vlm")


def run(args: argparse.Namespace) -> int:
    config = vlm_config(args)
    try:
        run_vlm_naming(
            args.collages,
            config=config,
            out_csv=args.out,
            cache_dir=args.cache,
            summary=args.summary,
        )
    except VLMAuthError as error:
        log.error("%s", error)
        return 2
    return 0
