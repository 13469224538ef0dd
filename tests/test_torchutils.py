"""The training RNG: one stream across epochs, the caller's RNG untouched, resumable from a checkpoint; seeded
blocks."""

import pytest
import torch

from nao.torchutils import TrainingRng, seeded

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]


def draws(rng: TrainingRng, device: str, n: int = 4) -> torch.Tensor:
    """What an epoch's dropout would draw: from the device's global generator."""
    with rng.active():
        return torch.rand(n, device=device).cpu()


@pytest.mark.parametrize("device", DEVICES)
def test_epochs_continue_one_seeded_stream_and_leave_the_callers_rng_alone(device):
    torch.manual_seed(123)
    callers_next = torch.rand(4, device=device).cpu()
    torch.manual_seed(123)
    rng = TrainingRng(7, device)
    first, second = draws(rng, device), draws(rng, device)
    assert torch.equal(torch.rand(4, device=device).cpu(), callers_next)  # the caller's generator did not move
    assert not torch.equal(first, second)  # the second epoch does not repeat the first one's masks
    torch.manual_seed(7)
    assert torch.equal(torch.cat([first, second]), torch.rand(8, device=device).cpu())


@pytest.mark.parametrize("device", DEVICES)
def test_a_saved_state_resumes_where_it_left_off(device):
    rng = TrainingRng(7, device)
    draws(rng, device)
    saved = rng.state_dict()
    expected = draws(rng, device)
    resumed = TrainingRng(0, device)
    resumed.load_state_dict(saved)
    assert torch.equal(draws(resumed, device), expected)


def test_a_checkpoint_holding_only_the_cpu_state_still_loads():
    rng = TrainingRng(7, "cpu")
    draws(rng, "cpu")
    old_format = rng.state_dict()["cpu"]
    expected = draws(rng, "cpu")
    resumed = TrainingRng(0, "cpu")
    resumed.load_state_dict(old_format)
    assert torch.equal(draws(resumed, "cpu"), expected)


@pytest.mark.parametrize("device", DEVICES)
def test_a_seeded_block_draws_the_seeds_numbers_and_gives_the_caller_its_generator_back(device):
    torch.manual_seed(123)
    torch.rand(1, device=device)  # CUDA, where tested, is in use before the block
    callers_next = torch.rand(4, device=device).cpu()
    torch.manual_seed(123)
    torch.rand(1, device=device)
    with seeded(7):
        inside = torch.rand(4, device=device).cpu()
    assert torch.equal(torch.rand(4, device=device).cpu(), callers_next)
    torch.manual_seed(7)
    assert torch.equal(inside, torch.rand(4, device=device).cpu())
