"""Batched normalisation and augmentation of uint8 images on the training device.

Every dataset is held as uint8 ``[N, C, H, W]`` tensors at ``image_size``, so a training step
never decodes images and the data pipeline is a handful of batched tensor ops on the training
device (:class:`Augmenter`). Policies (:data:`~search.data.facts.AUGMENT_POLICIES`,
``Augmenter(..., policy=...)``):

- ``none``: no augmentation, ``augment(x) == normalize(x)``.
- ``translate``: a random whole-pixel shift of up to ``max_shift`` px in x and y (default
  ``max(1, image_size // 16)``), zeros (black) entering, no flip.
- ``crop_flip``: the CIFAR recipe: zero-pad by ``image_size // 8`` px and crop back (a shift of up
  to that many px), then a horizontal flip with probability 1/2 if the dataset allows it.
- ``resized_crop``: a random resized crop (area 0.5-1, aspect 3/4-4/3) plus the flip.

:func:`~search.data.facts.default_augment` picks the policy for a dataset
(``training.augment: auto``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from search.data.facts import AUGMENT_POLICIES
from search.data.splits import DatasetSplits

__all__ = ["Augmenter"]


class Augmenter:
    """Batched normalisation and augmentation of uint8 batches on ``device``.

    ``augment`` applies ``policy`` (one of :data:`AUGMENT_POLICIES`), drawing every random number
    from the given ``torch.Generator`` (on the generator's device, then moved: the same seed gives
    the same batch on any device). No per-image Python work in any policy:

    - ``"none"``: ``normalize(x)``; the generator is not touched.
    - ``"translate"``: each image shifted by whole pixels ``(dx, dy)``, each uniform over
      ``-max_shift..max_shift`` (default ``max(1, image_size // 16)``), zeros (black, before
      normalisation) entering at the edges; never flipped.
    - ``"crop_flip"``: the same shift with ``max_shift`` defaulting to ``image_size // 8`` (pad by
      that much, random crop back), then, if ``hflip``, a horizontal flip with probability 1/2.
    - ``"resized_crop"``: a random resized crop (area fraction in ``scale``, aspect ratio
      log-uniform in ``ratio``, always inside the image) and, if ``hflip``, a horizontal flip
      with probability 1/2, as one affine map per image applied with one ``affine_grid`` +
      ``grid_sample`` call (bilinear).

    The shifts are exact: an index gather on the zero-padded uint8 batch, so every output pixel
    is an input pixel or 0. ``hflip`` defaults to ``splits.hflip``; ``scale``/``ratio`` matter
    only to ``resized_crop`` and ``max_shift`` only to ``translate``/``crop_flip`` (passing it to
    another policy is a ``ValueError``).
    """

    def __init__(
        self,
        splits: DatasetSplits,
        device: torch.device | str = "cpu",
        *,
        policy: str = "resized_crop",
        max_shift: int | None = None,
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: bool | None = None,
    ) -> None:
        if not isinstance(policy, str) or policy not in AUGMENT_POLICIES:
            raise ValueError(
                f"Augmenter policy={policy!r}: expected one of {', '.join(AUGMENT_POLICIES)}"
            )
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"Augmenter scale={scale}: need 0 < low <= high <= 1")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"Augmenter ratio={ratio}: need 0 < low <= high")
        if max_shift is not None:
            if policy not in ("translate", "crop_flip"):
                raise ValueError(
                    f"Augmenter max_shift={max_shift!r}: only the translate and crop_flip "
                    f"policies shift, not policy={policy!r}"
                )
            if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
                raise ValueError(f"Augmenter max_shift={max_shift!r}: need an integer >= 0")
        self.device = torch.device(device)
        self.policy = policy
        self.scale = scale
        self.ratio = ratio
        self.hflip = splits.hflip if hflip is None else hflip
        self.image_size = splits.image_size
        if max_shift is None:
            size = splits.image_size
            max_shift = {"translate": max(1, size // 16), "crop_flip": size // 8}.get(policy, 0)
        self.max_shift: int = max_shift
        # [1, C, 1, 1] so they broadcast over a batch
        self._mean = torch.tensor(splits.mean, dtype=torch.float32, device=self.device)
        self._mean = self._mean.view(1, -1, 1, 1)
        self._std = torch.tensor(splits.std, dtype=torch.float32, device=self.device)
        self._std = self._std.view(1, -1, 1, 1)

    def _to_device(self, x: Tensor) -> Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"expected a uint8 batch, got {x.dtype}")
        return x.to(self.device, non_blocking=True)

    def _to_unit(self, x: Tensor) -> Tensor:
        return self._to_device(x).float().div_(255.0)

    def normalize(self, x: Tensor) -> Tensor:
        """uint8 ``[B, C, H, W]`` -> float32 ``(x / 255 - mean) / std`` on ``device``."""
        return self._to_unit(x).sub_(self._mean).div_(self._std)

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """uint8 ``[B, C, H, W]`` -> augmented (per ``policy``) normalized float32."""
        if self.policy == "none":
            return self.normalize(x)
        if self.policy == "resized_crop":
            return self._resized_crop(x, generator)
        b, m = x.shape[0], self.max_shift
        # All random numbers on the generator's device, then moved: same result on any device.
        shift = torch.randint(-m, m + 1, (b, 2), generator=generator, device=generator.device)
        flip = None
        if self.policy == "crop_flip":
            coin = torch.randint(0, 2, (b,), generator=generator, device=generator.device)
            flip = coin.to(self.device).bool() if self.hflip else None
        shift = shift.to(self.device)
        out = _shift_images(self._to_device(x), shift[:, 0], shift[:, 1], m, flip)
        return self.normalize(out)

    def _resized_crop(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b = x.shape[0]
        # All random numbers on the generator's device, then moved: same result on any device.
        u = torch.rand(b, 5, generator=generator, device=generator.device)
        u = u.to(self.device, torch.float32)
        lo, hi = self.scale
        area = lo + (hi - lo) * u[:, 0]
        log_r0, log_r1 = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_r0 + (log_r1 - log_r0) * u[:, 1])
        # crop width/height as fractions of the image (1 = whole side)
        w = torch.sqrt(area * aspect).clamp_(max=1.0)
        h = torch.sqrt(area / aspect).clamp_(max=1.0)
        # crop centre in [-1, 1] coordinates, constrained so the crop stays inside the image
        cx = (1.0 - w) * (2.0 * u[:, 2] - 1.0)
        cy = (1.0 - h) * (2.0 * u[:, 3] - 1.0)
        sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if self.hflip else torch.ones_like(w)
        # theta maps output coords to input coords: x_in = sign * w * x_out + cx
        theta = torch.zeros(b, 2, 3, device=self.device)
        theta[:, 0, 0] = sign * w
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = h
        theta[:, 1, 2] = cy
        size = (b, x.shape[1], self.image_size, self.image_size)
        grid = F.affine_grid(theta, list(size), align_corners=False)
        out = F.grid_sample(
            self._to_unit(x), grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return out.sub_(self._mean).div_(self._std)


def _shift_images(x: Tensor, dx: Tensor, dy: Tensor, max_shift: int, flip: Tensor | None) -> Tensor:
    """``out[b, :, i, j] = x[b, :, i - dy[b], j - dx[b]]`` (0 outside the image), then mirrored
    left-right where ``flip[b]``; ``|dx|, |dy| <= max_shift``. Two gathers on the padded batch."""
    b, c, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p)) if p else x
    rows = torch.arange(h, device=x.device) - dy[:, None] + p  # [B, H] rows of `padded`
    cols = torch.arange(w, device=x.device).expand(b, w)
    if flip is not None:
        cols = torch.where(flip[:, None], w - 1 - cols, cols)
    cols = cols - dx[:, None] + p  # [B, W] columns of `padded`
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * p))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))
