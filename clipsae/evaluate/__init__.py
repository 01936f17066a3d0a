"""Evaluation of a trained SAE: zero-shot with the SAE spliced in, its error baselines, a linear
probe, sparsity sweeps, seed-to-seed alignment, monosemanticity and the SpLiCE baseline."""
