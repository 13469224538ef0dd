"""Training-free scores of CNN archs (nao.tasks.cnn.proxies): each proxy against its definition on networks small
enough to compute it by hand, and the scores of a space's archs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import write_stripes
from torch import nn

import nao
from nao.tasks.cnn.network import NetworkConfig
from nao.tasks.cnn.proxies import PROXIES, proxy_scores
from nao.tasks.cnn.train import DataConfig


class TupleOutput(nn.Module):
    """``layers`` with the (logits, auxiliary logits) output of the task's networks."""

    def __init__(self, *layers: nn.Module):
        super().__init__()
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.layers(x), None


def two_linear_layers(seed: int) -> TupleOutput:
    torch.manual_seed(seed)
    return TupleOutput(nn.Flatten(), nn.Linear(6, 5, bias=False), nn.Linear(5, 3, bias=False))


def test_weights_counts_every_parameter_of_the_network():
    model = TupleOutput(nn.Flatten(), nn.Linear(6, 5), nn.Linear(5, 3, bias=False))
    assert PROXIES["weights"](model, torch.randn(4, 1, 2, 3), torch.zeros(4, dtype=torch.long)) == 6 * 5 + 5 + 5 * 3


def test_synflow_is_the_sum_of_every_layers_synaptic_flow_on_an_all_ones_input():
    model = two_linear_layers(0)
    w1, w2 = (layer.weight.detach().abs().double() for layer in model.layers[1:])
    flow = float(torch.ones(3, dtype=torch.float64) @ w2 @ w1 @ torch.ones(6, dtype=torch.float64))
    # through a bias-free linear network the flow is conserved: each layer's saliencies sum to the output
    assert PROXIES["synflow"](model, torch.randn(4, 1, 2, 3), torch.zeros(4, dtype=torch.long)) == pytest.approx(
        math.log(2 * flow), rel=1e-12)


def test_synflow_ignores_the_images_and_the_signs_of_the_weights():
    images = torch.randn(4, 1, 2, 3)
    flipped = two_linear_layers(0)
    with torch.no_grad():
        flipped.layers[1].weight.neg_()
    labels = torch.zeros(4, dtype=torch.long)
    assert PROXIES["synflow"](two_linear_layers(0), images, labels) == PROXIES["synflow"](flipped, -images, labels)


def test_snip_is_the_summed_saliency_of_the_weights_for_the_mini_batchs_loss():
    model = TupleOutput(nn.Flatten(), nn.Linear(6, 3, bias=False))
    images, labels = torch.randn(4, 1, 2, 3), torch.tensor([0, 1, 2, 1])
    w, x = model.layers[1].weight.detach().numpy(), images.flatten(1).numpy()
    logits = x @ w.T
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    gradient = (probabilities - np.eye(3)[labels.numpy()]).T @ x / len(x)  # of the mean cross-entropy
    assert PROXIES["snip"](model, images, labels) == pytest.approx(float(np.abs(w * gradient).sum()), rel=1e-5)


def test_naswot_is_the_log_determinant_of_how_often_two_images_agree_on_each_relu():
    codes = torch.tensor([[1.0, -1, 1, -1], [1, 1, -1, -1], [-1, -1, -1, 1]])  # the ReLU's input: images as is
    model = TupleOutput(nn.Flatten(), nn.ReLU())
    active = (codes > 0).double()
    agreement = active @ active.T + (1 - active) @ (1 - active).T  # [[4, 2, 1], [2, 4, 1], [1, 1, 4]]
    assert agreement[0, 1] == 2 and agreement[0, 2] == 1
    assert PROXIES["naswot"](model, codes.view(3, 1, 2, 2), torch.zeros(3, dtype=torch.long)) == pytest.approx(
        math.log(float(torch.linalg.det(agreement))))


def test_naswot_cannot_tell_apart_images_that_activate_the_same_relus():
    model = TupleOutput(nn.Flatten(), nn.ReLU())
    same = torch.tensor([[1.0, -1, 2, -3], [2, -2, 1, -1]]).view(2, 1, 2, 2)
    assert PROXIES["naswot"](model, same, torch.zeros(2, dtype=torch.long)) == -math.inf


@pytest.fixture(scope="module")
def stripes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("proxies")
    write_stripes(folder)
    return DataConfig(name="mnist", dir=str(folder), valid_size=60, download=False).load(0)


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_every_arch_of_a_space_gets_a_finite_score_that_its_seed_determines(name, stripes):
    space = nao.get_space("nao-cnn")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(3)]
    network = NetworkConfig(channels=4, cells_per_stage=1, auxiliary=False)
    scores = proxy_scores(name, space, archs, network, stripes, seed=0, batch_size=16)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    assert np.array_equal(scores, proxy_scores(name, space, archs, network, stripes, seed=0, batch_size=16))
    assert len(set(scores)) > 1  # the archs differ, so do their scores


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("name", sorted(PROXIES))
def test_on_cuda_every_proxy_scores_as_on_the_cpu(name, stripes, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full float32 convolutions, as on the CPU
    space = nao.get_space("nao-cnn")
    archs = [space.sample(np.random.default_rng(1))]
    network = NetworkConfig(channels=4, cells_per_stage=1, auxiliary=False)
    on_cpu, on_cuda = (proxy_scores(name, space, archs, network, stripes, seed=0, batch_size=16, device=device)
                       for device in ("cpu", "cuda"))
    assert np.allclose(on_cpu, on_cuda, rtol=1e-3)


def test_an_unknown_proxy_is_refused_with_the_known_names(stripes):
    with pytest.raises(KeyError, match="synflow"):
        proxy_scores("zen", nao.get_space("nao-cnn"), [], NetworkConfig(), stripes, seed=0)
