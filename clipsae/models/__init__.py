"""CLIP models: open_clip loading and layer hooks, the embedded tiny CLIP, the text tower."""
