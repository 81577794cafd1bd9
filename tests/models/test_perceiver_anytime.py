"""The anytime Perceiver: one trained model, run with k = 1..T iterations."""

from __future__ import annotations

import pytest
import torch

import models
from models.cost import estimate, measure
from models.perceiver import AtIterations, Perceiver

HP = dict(
    patch_size=2,
    projection_dim=16,
    num_latents=8,
    latent_dim=32,
    num_iterations=3,
    self_per_cross=1,
    latent_heads=4,
    cross_heads=2,
    share_weights=True,
)


def _model(**overrides: object) -> Perceiver:
    torch.manual_seed(0)
    model = models.build_model(
        "perceiver", num_classes=5, image_size=8, in_channels=1, **{**HP, **overrides}
    )
    assert isinstance(model, Perceiver)
    return model.eval()


def test_every_iteration_rows_are_the_k_iteration_forwards() -> None:
    model = _model()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        every = model(x, every_iteration=True)
        assert every.shape == (3, 4, 5)
        for k in (1, 2, 3):
            torch.testing.assert_close(every[k - 1], model(x, k), rtol=0, atol=1e-6)
        assert torch.equal(every[-1], model(x))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_the_k_iteration_model_costs_the_analytic_k_iteration_flops(k: int) -> None:
    """FLOPs counted by running exactly k iterations equal the estimate of a k-iteration
    Perceiver: the point an anytime trial records for k is priced at its own cost."""
    counted = measure(AtIterations(_model(), k), (2, 1, 8, 8), latency=False, memory=False)
    analytic = estimate(
        "perceiver", image_size=8, in_channels=1, num_classes=5, **{**HP, "num_iterations": k}
    )
    assert counted.flops == analytic.flops


def test_iterations_outside_the_model_are_refused() -> None:
    model = _model()
    for bad in (0, 4, True):
        with pytest.raises(ValueError, match=r"iterations=.*allowed: 1\.\.3"):
            AtIterations(model, bad)  # type: ignore[arg-type]
