"""Where an artifact starts to differ from its reference: per-layer error, the first diverging layer, and the
subgraph that reproduces it (``exportkit explain``)."""
