"""Latent names from a vision-language model behind any OpenAI-compatible chat endpoint."""

from clipsae.interpret.vlm.client import VLMAuthError, VLMError
from clipsae.interpret.vlm.config import VLMConfig
from clipsae.interpret.vlm.naming import VLMResult, find_collages, name_collages, run_vlm_naming

__all__ = [
    "VLMAuthError",
    "VLMConfig",
    "VLMError",
    "VLMResult",
    "find_collages",
    "name_collages",
    "run_vlm_naming",
]
