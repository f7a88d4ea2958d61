"""The networks: one small module per family's GANs, the image classifier the judge and the
evaluator train, and part B's black box (a random forest) with its form as plain arrays."""
