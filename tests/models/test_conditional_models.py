"""The class-conditional networks: shapes at 32 and 64 pixels, tanh range, spectral norm on
every weight of D, the projection and the conditional batch norm both reading the label, and
their `condition_weight` (transitional conditioning): at 1 exactly what they computed before it
existed, at 0 blind to the label, saved, and filled in as 1 for checkpoints without it."""

import pytest
import torch
import torch.nn.functional as F
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


def _class_embeddings_moved(G, D):
    """Embeddings away from their class-blind start, so the class changes what both compute."""
    for m in G.modules():
        if isinstance(m, ConditionalBatchNorm2d):
            nn.init.normal_(m.gain.weight, 1.0, 0.5)  # some gains outside [0.5, 2]
            nn.init.normal_(m.bias.weight, 0.0, 0.5)
    nn.init.normal_(D.embed.parametrizations.weight.original, 0.0, 1.0)


def _todays_generator(G, z, labels):
    """G's forward as it was before transitional conditioning, from G's own modules."""
    h = G.linear(z.flatten(1)).view(z.shape[0], -1, 4, 4)
    for block in G.blocks:
        def bn(m, x):
            return (m.norm(x) * m.gain(labels)[:, :, None, None]
                    + m.bias(labels)[:, :, None, None])
        x = h
        h = F.interpolate(F.relu(bn(block.bn1, x)), scale_factor=2)
        h = block.conv2(F.relu(bn(block.bn2, block.conv1(h))))
        h = h + block.skip(F.interpolate(x, scale_factor=2))
    return G.out(h)


def _todays_discriminator(D, x, labels):
    h = F.relu(D.blocks(x)).sum(dim=(2, 3))
    return D.linear(h).squeeze(1) + (D.embed(labels) * h).sum(1)


def test_at_full_condition_weight_both_compute_exactly_what_they_did_before():
    G = ConditionalGenerator(CLASSES, z_dim=16, width=4, size=32).eval()
    D = ProjectionDiscriminator(CLASSES, width=4, size=32).eval()
    _class_embeddings_moved(G, D)
    assert float(G.condition_weight) == 1.0 and float(D.condition_weight) == 1.0  # the default
    z, labels, x = torch.randn(4, 16), _labels(), torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(G(z, labels), _todays_generator(G, z, labels))
        assert torch.equal(D(x, labels), _todays_discriminator(D, x, labels))


def test_at_condition_weight_zero_neither_reads_the_label():
    G = ConditionalGenerator(CLASSES, z_dim=16, width=4, size=32).eval()
    D = ProjectionDiscriminator(CLASSES, width=4, size=32).eval()
    _class_embeddings_moved(G, D)
    z, x = torch.randn(4, 16), torch.randn(4, 3, 32, 32)
    zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
    with torch.no_grad():
        assert (G(z, zeros) - G(z, ones)).abs().max() > 1e-4  # the class matters at weight 1
        G.condition_weight.fill_(0.0)
        D.condition_weight.fill_(0.0)
        assert torch.equal(G(z, zeros), G(z, ones))
        assert torch.equal(D(x, zeros), D(x, ones))
        h = F.relu(D.blocks(x)).sum(dim=(2, 3))
        assert torch.equal(D(x, zeros), D.linear(h).squeeze(1))  # the unconditional head
        G.condition_weight.fill_(0.5)  # halfway: the class matters again, less
        assert (G(z, zeros) - G(z, ones)).abs().max() > 1e-5


def test_the_condition_weight_is_saved_and_checkpoints_from_before_it_load_as_one():
    for model in (ConditionalGenerator(CLASSES, z_dim=16, width=4, size=32),
                  ProjectionDiscriminator(CLASSES, width=4, size=32)):
        model.condition_weight.fill_(0.25)
        state = model.state_dict()
        assert float(state["condition_weight"]) == 0.25
        fresh = _like(model)
        fresh.load_state_dict(state)
        assert float(fresh.condition_weight) == 0.25
        old = {k: v for k, v in state.items() if k != "condition_weight"}
        fresh.load_state_dict(old)  # strict: the missing buffer is filled in, not an error
        assert float(fresh.condition_weight) == 1.0


def _like(model):
    if isinstance(model, ConditionalGenerator):
        return ConditionalGenerator(CLASSES, z_dim=16, width=4, size=32)
    return ProjectionDiscriminator(CLASSES, width=4, size=32)
