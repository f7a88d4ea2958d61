"""How good a GAN's output is: tabular metrics, KID, usefulness, paired gains with their
intervals, and the judge, the classifier of real images in whose features images are scored."""
