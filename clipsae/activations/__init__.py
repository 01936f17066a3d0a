"""Image activations: extraction from a model layer into journaled ``.npy`` shards."""
