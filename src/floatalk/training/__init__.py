"""Training both FLOAT stages: data preparation, the motion auto-encoder and the FMT."""
