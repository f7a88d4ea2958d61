"""The GAN step loop and the Ray Tune trainables built on it."""
