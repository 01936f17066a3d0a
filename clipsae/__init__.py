"""clipsae: sparse autoencoders on CLIP activations, with checked bilingual explanations."""

__version__ = "0.1.0"
