"""GAN Farm: grow many small GANs in parallel with Ray Tune and keep each one's best epoch.

Reusing what a farm grew (README, "Drawing more from what the farm grew"):

    exp = farm.open_experiment("results/NAME")      # or s3://bucket/prefix/NAME
    gen = exp.generator(family="tabular-a", dataset="diabetes")
    rows = gen.sample(1000, seed=0)
    gen.save("diabetes.gen"); farm.load_generator("diabetes.gen").sample(1000, seed=0)

`import farm` stays cheap: torch and pandas load only when these are called.
"""

__version__ = "0.1.0"


def open_experiment(location, data_dir=None):
    """A finished experiment (farm.sampling.finished.Experiment) at a folder or a bucket URI."""
    from farm.sampling.finished import open_experiment as _open

    return _open(location, data_dir)


def load_generator(path):
    """A generator file written by `Generator.save` (farm.sampling.generators.Generator)."""
    from farm.sampling.generators import load_generator as _load

    return _load(path)
