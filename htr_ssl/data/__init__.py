"""Data layer: what a sample is, where it comes from, how it becomes a batch.

Nothing here imports models, training or evaluation code.
"""
