"""Scores: the BG/NBD and Gamma-Gamma model, its Numba kernels, per-customer scoring and fitting."""
