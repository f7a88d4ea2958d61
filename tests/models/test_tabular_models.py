"""The tabular MLPs: shapes, output ranges, exact one-hot blocks, packing, minibatch features."""

import pytest
import torch

from farm.models.tabular import MinibatchDiscrimination, MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize("output", ["capped_relu", "sigmoid", "blockwise"])
def test_generator_output_lies_in_unit_range(output):
    torch.manual_seed(0)
    G = MLPGenerator(20, 9, (16, 16), output=output, nominal_blocks=[(0, 3), (5, 9)])
    with torch.no_grad():
        x = G(torch.randn(32, 20) * 10)
    assert x.shape == (32, 9)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


@pytest.mark.parametrize("training", [True, False])
def test_blockwise_nominal_blocks_are_exact_one_hot_with_gradients(training):
    torch.manual_seed(0)
    G = MLPGenerator(8, 7, (16,), output="blockwise", nominal_blocks=[(1, 4), (4, 6)])
    G.train(training)
    x = G(torch.randn(64, 8))
    for start, stop in [(1, 4), (4, 6)]:
        block = x[:, start:stop]
        assert torch.all((block == 0) | (block == 1))
        assert torch.all(block.sum(1) == 1)
    if training:  # straight-through: the hard one-hot still passes gradients to G
        x[:, 1:4].mul(torch.arange(3.0)).sum().backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


def test_generator_takes_a_condition():
    G = MLPGenerator(4, 5, (8,), cond_dim=2)
    assert G(torch.randn(3, 4), torch.rand(3, 2)).shape == (3, 5)


def test_packed_discriminator_gives_one_logit_per_pack():
    D = MLPDiscriminator(6, (16, 8), pack=4)
    assert D(torch.rand(32, 6)).shape == (8,)
    assert D(torch.rand(34, 6)).shape == (8,)  # a ragged tail is left out, not mixed in


def test_minibatch_features_see_similarity_within_the_batch():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(4, out_features=5, kernel_dim=3).requires_grad_(False)
    same = layer(torch.ones(8, 4))[:, 4:]
    spread = layer(torch.randn(8, 4) * 5)[:, 4:]
    assert same.shape == (8, 5)
    # Identical rows match each other fully: 7 other rows, exp(0) each.
    assert torch.allclose(same, torch.full_like(same, 7.0))
    assert float(spread.mean()) < float(same.mean())


def test_discriminator_with_minibatch_and_dropout():
    D = MLPDiscriminator(6, (16, 8), minibatch_features=5, dropout=0.5)
    assert D(torch.rand(10, 6)).shape == (10,)
