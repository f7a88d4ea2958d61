"""The class-conditional networks: shapes at 32 and 64 pixels, tanh range, spectral norm on
every weight of D, the projection and the conditional batch norm both reading the label."""

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from farm.models.conditional import (ConditionalBatchNorm2d, ConditionalGenerator,
                                     ProjectionDiscriminator, blocks_for)

CLASSES = 3


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _labels(n=4):
    return torch.arange(n) % CLASSES


@pytest.mark.parametrize("size", [32, 64])
def test_shapes_and_range(size):
    G = ConditionalGenerator(CLASSES, z_dim=16, width=4, size=size)
    D = ProjectionDiscriminator(CLASSES, width=4, size=size)
    assert G.noise_shape == (16,)
    x = G(torch.randn(4, 16) * 5, _labels()).detach()
    assert x.shape == (4, 3, size, size)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    assert D(x, _labels()).shape == (4,)
    G.eval()
    with torch.no_grad():
        assert G(torch.randn(1, 16), torch.tensor([2])).shape == (1, 3, size, size)


@pytest.mark.parametrize("size", [4, 48, 63])
def test_sizes_that_are_not_a_doubling_of_4x4_are_refused(size):
    with pytest.raises(ValueError, match=f"image size {size}"):
        blocks_for(size)
    with pytest.raises(ValueError):
        ConditionalGenerator(CLASSES, size=size)


def test_every_weight_of_d_is_spectrally_normalised_and_d_has_no_batch_norm():
    D = ProjectionDiscriminator(CLASSES, width=4, size=32)
    weighted = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert len(weighted) == 3 * 3 + 2  # three blocks of two convs and a skip, linear, embedding
    assert all(parametrize.is_parametrized(m, "weight") for m in weighted)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    # the largest singular value of every normalised weight is ~1 once the power iteration ran
    for _ in range(30):
        D(torch.randn(2, 3, 32, 32), _labels(2))
    for m in weighted:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)


def test_projection_reads_the_label():
    D = ProjectionDiscriminator(CLASSES, width=4, size=32).eval()  # eval: no power iteration
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        same = D(x, torch.zeros(4, dtype=torch.long))
        assert torch.equal(same, D(x, torch.zeros(4, dtype=torch.long)))
        other = D(x, torch.ones(4, dtype=torch.long))
    assert (same - other).abs().min() > 1e-6


def test_conditional_batch_norm_reads_the_label():
    G = ConditionalGenerator(CLASSES, z_dim=16, width=4, size=32)
    norms = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert len(norms) == 2 * 3  # two per upsampling block
    z = torch.randn(4, 16)
    G.eval()
    with torch.no_grad():
        # it starts class-blind (gain 1, bias 0 for every class) ...
        assert torch.equal(G(z, torch.zeros(4, dtype=torch.long)),
                           G(z, torch.ones(4, dtype=torch.long)))
        # ... and the class's own gain and bias are what training moves
        for m in norms:
            nn.init.normal_(m.gain.weight, 1.0, 0.3)
            nn.init.normal_(m.bias.weight, 0.0, 0.3)
        a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long))
    assert (a - b).abs().flatten(1).amax(1).min() > 1e-4


def test_gradients_reach_the_class_embeddings_of_both_networks():
    G = ConditionalGenerator(CLASSES, z_dim=16, width=4, size=32)
    D = ProjectionDiscriminator(CLASSES, width=4, size=32)
    D(G(torch.randn(4, 16), _labels()), _labels()).mean().backward()
    assert G.blocks[0].bn1.gain.weight.grad.abs().sum() > 0
    assert D.embed.parametrizations.weight.original.grad.abs().sum() > 0
