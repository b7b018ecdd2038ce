"""The classifier: architecture, pretrained weights, preprocessing, artifacts, inference."""
