"""The vision library: the cell classifier, the analysis of a photo (scale, gate, detection,
framing), training and laboratory adaptation, the labels and the shipped weights.

It knows nothing of the service (``core``), its adapters or research code (import contracts in
``pyproject.toml``): anything that can read an image can use it.
"""
