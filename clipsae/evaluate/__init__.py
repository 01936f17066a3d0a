"""Evaluation of a trained SAE inside the model: zero-shot accuracy with the SAE spliced in."""
