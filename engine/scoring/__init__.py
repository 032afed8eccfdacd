"""Scores: the BG/NBD and Gamma-Gamma model, its Numba kernels, batch scoring and fitting."""
