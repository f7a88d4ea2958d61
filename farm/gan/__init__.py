"""The GAN step loop every family shares, and what it trains with: EMA of G, DiffAugment,
regularisers, and a trial's checkpoint state. Torch only: no Ray."""
