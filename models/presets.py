"""The Keras seed examples' configurations, as presets (CIFAR-100: 100 classes, RGB).

Each preset reproduces one seed example (``/work/shared/seeds/``) in our hyperparameter
names, with its training settings and its reported test accuracy (fractions; None where the
seed reports no converged result). Where our model differs from the seed's code on purpose
(the seed's defects, see the family modules), the preset keeps the seed's sizes, not its
defects.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["PRESETS", "Preset"]


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named model configuration with its training recipe and reported results.

    ``train`` holds ``lr, weight_decay, batch_size, epochs, optimizer``.
    """

    name: str
    family: str
    image_size: int
    in_channels: int
    num_classes: int
    hparams: dict[str, Any]
    train: dict[str, Any]
    source: str
    reported_top1: float | None = None
    reported_top5: float | None = None
    #: The dataset the reported accuracies were measured on (a ``search.data`` dataset name).
    dataset: str = "cifar100"


def _train(lr: float, batch_size: int, epochs: int, optimizer: str = "adamw") -> dict[str, Any]:
    return {
        "lr": lr,
        "weight_decay": 1e-4,
        "batch_size": batch_size,
        "epochs": epochs,
        "optimizer": optimizer,
    }


# The three attention-free seeds share image 64, patch 8, embedding_dim 256, 4 blocks,
# dropout 0.2, batch 128, "recommended num_epochs = 50", AdamW(weight_decay=1e-4).
_MLP_SEED = "seeds/004_a986a7e2eb55f1d6.txt"
_MLP_COMMON: dict[str, Any] = {"patch_size": 8, "hidden_dim": 256, "num_blocks": 4, "dropout": 0.2}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="keras-perceiver",
            family="perceiver",
            image_size=64,
            in_channels=3,
            num_classes=100,
            hparams={
                "patch_size": 2,
                "projection_dim": 256,
                "pos_encoding": "learned",  # the seed's; the paper (and our default) is fourier
                "num_latents": 256,  # seed latent_dim
                "latent_dim": 256,  # seed projection_dim
                "num_iterations": 2,
                "self_per_cross": 4,  # seed num_transformer_blocks
                "cross_heads": 1,
                "latent_heads": 8,  # seed num_heads
                "mlp_ratio": 1.0,  # seed ffn_units = [256, 256]
                "share_weights": True,
                "dropout": 0.2,
                "attn_dropout": 0.1,
            },
            # The seed builds keras Adam (LAMB "isn't supported") and declares weight_decay
            # 1e-4 without passing it on; the paper trains with LAMB.
            train=_train(1e-3, 64, 50, optimizer="adam"),
            source="seeds/000_12b52d1df06cfb31.txt",
            reported_top1=0.53,
            reported_top5=0.81,
        ),
        Preset(
            name="keras-vit",
            family="vit",
            image_size=72,
            in_channels=3,
            num_classes=100,
            hparams={
                "patch_size": 6,
                "embed_dim": 64,  # seed projection_dim
                "depth": 8,  # seed transformer_layers
                "num_heads": 4,
                "mlp_ratio": 2.0,  # seed transformer_units = [128, 64]
                "pool": "flatten",
                "head_units": (2048, 1024),  # seed mlp_head_units
                "dropout": 0.1,
                "attn_dropout": 0.1,
            },
            train=_train(1e-3, 256, 100),
            source="seeds/002_296d76466d0a68a3.txt",
            reported_top1=0.55,
            reported_top5=0.82,
        ),
        Preset(
            name="keras-mixer",
            family="mixer",
            image_size=64,
            in_channels=3,
            num_classes=100,
            # the seed sizes both MLPs with num_patches = (64 / 8)^2 = 64
            hparams={**_MLP_COMMON, "tokens_mlp_dim": 64, "channels_mlp_dim": 64, "pool": "mean"},
            train=_train(5e-3, 128, 50),
            source=_MLP_SEED,
        ),
        Preset(
            name="keras-fnet",
            family="fnet",
            image_size=64,
            in_channels=3,
            num_classes=100,
            hparams={**_MLP_COMMON, "mlp_dim": 256, "pos_embedding": True, "pool": "mean"},
            train=_train(1e-3, 128, 50),
            source=_MLP_SEED,
        ),
        Preset(
            name="keras-gmlp",
            family="gmlp",
            image_size=64,
            in_channels=3,
            num_classes=100,
            hparams={**_MLP_COMMON, "ffn_dim": 512, "pool": "mean"},  # seed embedding_dim * 2
            train=_train(3e-3, 128, 50),
            source=_MLP_SEED,
        ),
    )
}
