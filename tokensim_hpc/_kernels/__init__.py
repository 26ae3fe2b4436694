"""Compiled kernels, built from ``cython_kernels/*.pyx`` by ``setup.py``."""
