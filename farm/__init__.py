"""GAN Farm: grow many small GANs in parallel with Ray Tune and keep each one's best epoch."""

__version__ = "0.1.0"
