"""The fruit report's image networks: shapes, Tanh range, noise shapes, exact spikes, D output
conventions, gradients from D to G, parameter counts, channels_last."""

import pytest
import torch

from farm.models.images import (D34, DISCRIMINATORS, GENERATORS, G1, G2, G2a, DCGANDiscriminator,
                                SNResNetDiscriminator,
                                noise_for, spike_plane, spike_vector)

SMALL = {"G1": lambda: G1(width=8), "G2": lambda: G2(width=8), "G2a": lambda: G2a(width=8)}
NOISE = {"G1": (100, 1, 1), "G2": (3, 8, 64), "G2a": (3, 10, 64)}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", list(SMALL))
def test_generators_make_64x64_rgb_in_tanh_range(name):
    G = SMALL[name]()
    assert G.noise_shape == NOISE[name]
    z = noise_for(G, 3, "cpu") * 5  # loud noise still cannot leave [-1, 1]
    x = G(z).detach()
    assert x.shape == (3, 3, 64, 64)
    assert float(x.min()) >= -1.0 and float(x.max()) <= 1.0
    G.eval()
    with torch.no_grad():
        assert G(z[:1]).shape == (1, 3, 64, 64)


def test_g1_accepts_flat_noise_and_noise_dim():
    G = G1(width=8)
    z = torch.randn(2, 100)
    G.eval()
    with torch.no_grad():
        assert torch.equal(G(z), G(z.reshape(2, 100, 1, 1)))
    assert G1(noise_dim=20, width=8)(torch.randn(2, 20)).shape == (2, 3, 64, 64)


def test_noise_for_shapes_and_rng():
    for name, shape in NOISE.items():
        assert noise_for(SMALL[name](), 4, "cpu").shape == (4, *shape)
    G = G1(noise_dim=7, width=8)
    a = noise_for(G, 2, "cpu", torch.Generator().manual_seed(3))
    b = noise_for(G, 2, "cpu", torch.Generator().manual_seed(3))
    assert a.shape == (2, 7, 1, 1) and torch.equal(a, b)


@pytest.mark.parametrize("shape", [(4, 100), (4, 100, 1, 1)])
def test_spike_vector_sets_exactly_one_entry_per_row(shape):
    z = torch.randn(shape)
    k = torch.tensor([0, 5, 99, 5])
    out = spike_vector(z, k, 10.0)
    assert out.shape == z.shape and not torch.equal(out, z)
    flat_out, flat_z = out.reshape(4, 100), z.reshape(4, 100)
    mask = torch.zeros(4, 100, dtype=torch.bool)
    mask[torch.arange(4), k] = True
    assert torch.all(flat_out[mask] == 10.0)
    assert torch.equal(flat_out[~mask], flat_z[~mask])
    assert torch.equal(spike_vector(z, 7, 2.0).reshape(4, 100)[:, 7], torch.full((4,), 2.0))


@pytest.mark.parametrize("height", [8, 10])
def test_spike_plane_sets_exactly_one_column_per_row(height):
    z = torch.randn(3, 3, height, 64)
    k = torch.tensor([0, 32, 63])
    out = spike_plane(z, k)
    mask = torch.zeros_like(z, dtype=torch.bool)
    for row, col in enumerate(k.tolist()):
        mask[row, :, :, col] = True
    assert torch.all(out[mask] == 1.0)
    assert torch.equal(out[~mask], z[~mask])
    assert torch.all(spike_plane(z, 4)[:, :, :, 4] == 1.0)


def test_generators_spike_their_noise_from_labels():
    labels = torch.tensor([1, 2])
    for G in (G1(width=8, cond_classes=3), G2(width=8, cond_classes=3),
              G2a(width=8, cond_classes=3)):
        G.eval()
        z = noise_for(G, 2)
        with torch.no_grad():
            assert torch.equal(G(z, labels), G(G.spike(z, labels)))
    with pytest.raises(ValueError):
        G1(width=8)(torch.randn(2, 100), labels)
    with pytest.raises(ValueError):
        G1(noise_dim=10, cond_classes=30)


@pytest.mark.parametrize("num_outputs", [1, 31])
def test_dcgan_discriminator_output_convention(num_outputs):
    D = DCGANDiscriminator(width=8, num_outputs=num_outputs)
    out = D(torch.rand(4, 3, 64, 64) * 2 - 1)
    assert out.shape == ((4,) if num_outputs == 1 else (4, num_outputs))


def test_d34_output_conventions_and_gradients_to_g():
    G, D = G1(width=8), D34(1)
    out = D(G(noise_for(G, 2)))  # the one full-size D34 pass: 64x64, batch 2
    assert out.shape == (2,)
    out.sum().backward()
    assert all(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in G.parameters())
    D = D34(31).to(memory_format=torch.channels_last)  # the spiked model: 30 classes + fake
    x = torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last)[:, :, :32, :32]
    assert D(x).shape == (2, 31) and D.net.fc.out_features == 31  # non-contiguous, small


def test_d34_never_downloads():
    with pytest.raises(ValueError):
        D34(pretrained=True)


def test_d34_loads_a_local_state_dict(tmp_path):
    from torchvision.models import resnet34
    ref = resnet34(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r34.pt")
    D = D34(1, pretrained=tmp_path / "r34.pt")
    assert torch.equal(D.net.conv1.weight, ref.conv1.weight)


@pytest.mark.parametrize("name", list(SMALL))
def test_gradients_flow_from_d_to_every_part_of_g(name):
    G, D = SMALL[name](), DCGANDiscriminator(width=8)
    D(G(noise_for(G, 2))).sum().backward()
    for p in G.parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0


def test_parameter_counts_are_sane():
    assert 21.0e6 < n_params(D34(1)) < 21.5e6  # resnet34 is 21.8M with its 1000-way fc
    assert 3.0e6 < n_params(G1()) < 4.0e6  # the DCGAN generator at width 64: 3.58M
    assert n_params(G2()) > n_params(G1()) and n_params(G2a()) > n_params(G1())
    assert 2.5e6 < n_params(DCGANDiscriminator()) < 3.0e6  # DCGAN D at width 64: 2.77M
    assert n_params(G1(width=8)) < 200_000  # what the smoke runs use


def test_channels_last_inputs_work():
    G, D = G2(width=8), DCGANDiscriminator(width=8)
    G.eval(), D.eval()
    z = noise_for(G, 2)
    with torch.no_grad():
        ref = G(z)
        G.to(memory_format=torch.channels_last)
        assert torch.allclose(G(z.contiguous(memory_format=torch.channels_last)), ref, atol=1e-5)
        x = ref.contiguous(memory_format=torch.channels_last)
        assert torch.allclose(D(x), D.to(memory_format=torch.channels_last)(x), atol=1e-5)
        g1 = G1(width=8).to(memory_format=torch.channels_last)
        z1 = spike_vector(noise_for(g1, 2).contiguous(memory_format=torch.channels_last), 3)
        assert g1(z1).shape == (2, 3, 64, 64)


def test_registries_name_every_network():
    assert GENERATORS == {"G1": G1, "G2": G2, "G2a": G2a}
    assert DISCRIMINATORS == {"D34": D34, "DCGAN": DCGANDiscriminator,
                              "SNResNet": SNResNetDiscriminator}
