"""Pipelines (steps 2 and 7): a pipeline wraps a module (model) with pre/post-processing and I/O."""
