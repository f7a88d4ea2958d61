"""Tests for farm.metrics.images: KID against a naive reference, and its behaviour on shifts;
diversity on collapsed, faithful and scaled samples."""

from __future__ import annotations

import itertools

import pytest
import torch

from farm.metrics.images import diversity, kid, mmd2_unbiased, polynomial_kernel


def _naive_mmd2(x, y, degree=3, gamma=None, coef=1.0) -> float:
    """Binkowski et al.'s unbiased MMD^2 written out as plain double loops over Python floats."""
    x, y = x.tolist(), y.tolist()
    gamma = 1.0 / len(x[0]) if gamma is None else gamma

    def k(a, b):
        return (gamma * sum(p * q for p, q in zip(a, b)) + coef) ** degree

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(a, b) for a in x for b in y) / (m * n)
    return xx + yy - 2 * xy


def _gauss(n, d, shift=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + shift


@pytest.mark.parametrize("m,n,d", [(6, 7, 4), (10, 15, 3), (2, 2, 5)])
@pytest.mark.parametrize("kernel", [{}, {"degree": 2, "gamma": 0.3, "coef": 0.5}])
def test_mmd2_matches_naive_double_loop(m, n, d, kernel):
    x, y = _gauss(m, d, seed=1), _gauss(n, d, shift=0.4, seed=2)
    assert mmd2_unbiased(x, y, **kernel) == pytest.approx(_naive_mmd2(x, y, **kernel),
                                                          abs=1e-10, rel=1e-10)


def test_float32_input_is_accumulated_in_float64():
    x, y = _gauss(8, 4, seed=3).float(), _gauss(9, 4, shift=0.2, seed=4).float()
    reference = _naive_mmd2(x.double(), y.double())
    assert mmd2_unbiased(x, y) == pytest.approx(reference, abs=1e-10, rel=1e-10)


def test_kid_with_whole_samples_equals_one_mmd2():
    """subset_size >= both sizes: every subset is the whole sample, so std is 0."""
    x, y = _gauss(12, 5, seed=5), _gauss(12, 5, shift=0.3, seed=6)
    mean, std = kid(x, y, subsets=5, subset_size=1000)
    assert mean == pytest.approx(_naive_mmd2(x, y), abs=1e-10, rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_the_mean_of_subset_mmd2():
    x, y = _gauss(20, 3, seed=7), _gauss(25, 3, shift=0.5, seed=8)
    mean, std = kid(x, y, subsets=4, subset_size=8, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    scores = []
    for _ in range(4):
        i, j = torch.randperm(20, generator=g)[:8], torch.randperm(25, generator=g)[:8]
        scores.append(_naive_mmd2(x[i], y[j]))
    scores = torch.tensor(scores, dtype=torch.float64)
    assert mean == pytest.approx(float(scores.mean()), abs=1e-10)
    assert std == pytest.approx(float(scores.std(correction=0)), abs=1e-10)


def test_same_distribution_is_near_zero():
    x, y = _gauss(400, 16, seed=9), _gauss(400, 16, seed=10)
    mean, std = kid(x, y, subsets=20, subset_size=100, generator=torch.Generator().manual_seed(0))
    assert abs(mean) < 0.02
    assert std > 0


def test_shift_gives_positive_kid_growing_with_the_shift():
    real = _gauss(200, 16, seed=11)
    means = [kid(real, _gauss(200, 16, shift=s, seed=12), subsets=10, subset_size=100,
                 generator=torch.Generator().manual_seed(0))[0] for s in (0.0, 0.25, 0.5, 1.0)]
    assert means[1] > 0.05
    assert means == sorted(means)
    assert means[-1] > 10 * means[1]


def test_deterministic_with_a_seeded_generator():
    x, y = _gauss(50, 8, seed=13), _gauss(60, 8, shift=0.2, seed=14)
    runs = [kid(x, y, subsets=7, subset_size=20, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]
    assert runs[0] == runs[1]
    other = kid(x, y, subsets=7, subset_size=20, generator=torch.Generator().manual_seed(4))
    assert other != runs[0]


def test_small_samples_of_different_sizes():
    """A class has ~25 images: subset size falls back to the smaller sample (10 here)."""
    x, y = _gauss(10, 8, seed=15), _gauss(15, 8, shift=1.0, seed=16)
    mean, std = kid(x, y, generator=torch.Generator().manual_seed(0))
    assert mean > 0 and std > 0  # the 10 real rows are all used, the fake ones vary
    g = torch.Generator().manual_seed(0)
    torch.randperm(10, generator=g)
    j = torch.randperm(15, generator=g)[:10]
    first = _naive_mmd2(x, y[j])
    assert kid(x, y, subsets=1, generator=torch.Generator().manual_seed(0))[0] == pytest.approx(
        first, abs=1e-10, rel=1e-10)


def test_default_gamma_is_one_over_dim():
    x, y = _gauss(3, 4, seed=17), _gauss(5, 4, seed=18)
    assert torch.allclose(polynomial_kernel(x, y), (x @ y.T / 4 + 1) ** 3)


@pytest.mark.parametrize("x,y,message", [
    (torch.zeros(5), torch.zeros(5, 2), "shape"),
    (torch.zeros(1, 2), torch.zeros(5, 2), "at least 2"),
    (torch.zeros(5, 3), torch.zeros(5, 2), "feature sizes"),
    (torch.full((5, 2), float("nan")), torch.zeros(5, 2), "NaN"),
])
def test_bad_inputs_are_value_errors(x, y, message):
    with pytest.raises(ValueError, match=message):
        kid(x, y)
    with pytest.raises(ValueError, match=message):
        mmd2_unbiased(x, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x, y = _gauss(30, 8, seed=19), _gauss(40, 8, shift=0.3, seed=20)
    cpu = kid(x, y, subsets=5, subset_size=10, generator=torch.Generator().manual_seed(0))
    gpu = kid(x.cuda(), y.cuda(), subsets=5, subset_size=10,
              generator=torch.Generator().manual_seed(0))
    assert gpu == pytest.approx(cpu, abs=1e-10)


def test_diversity_is_zero_for_a_collapsed_generator_and_one_for_the_real_sample():
    real = _gauss(20, 8, seed=1)
    assert diversity(real, real) == pytest.approx(1.0)
    one_picture = real[3].repeat(16, 1)  # whatever the noise, the same features
    assert diversity(real, one_picture) == pytest.approx(0.0, abs=1e-12)
    # another sample of the same spread, elsewhere: about 1 (a sampling error of a few %)
    same_spread = diversity(_gauss(400, 8, seed=1), _gauss(400, 8, shift=5.0, seed=2))
    assert same_spread == pytest.approx(1.0, rel=0.05)


def test_diversity_is_the_ratio_of_mean_pairwise_distances():
    real, fake = _gauss(6, 3, seed=3), _gauss(5, 3, seed=4)

    def mean_distance(z):
        pairs = list(itertools.permutations(range(len(z)), 2))
        return sum(float(torch.dist(z[i], z[j])) for i, j in pairs) / len(pairs)

    assert diversity(real, fake) == pytest.approx(mean_distance(fake) / mean_distance(real))
    assert diversity(real, 0.5 * fake) == pytest.approx(0.5 * diversity(real, fake))
    with pytest.raises(ValueError, match="feature sizes differ"):
        diversity(real, _gauss(5, 4))
