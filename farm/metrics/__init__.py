"""Cheap quality metrics that a GAN trial reports every few epochs."""
