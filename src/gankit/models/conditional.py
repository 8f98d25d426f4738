"""Class-conditional G and D built around any unconditional model.

G (every variant): the one-hot label is concatenated to z (Mirza & Osindero 2014), so the inner G is built
with ``z_dim + num_classes`` inputs. D:

- ``concat`` (cGAN): the one-hot label is concatenated to D's input: as K constant planes for conv nets, as K
  extra inputs for flat nets.
- ``projection`` (Miyato & Koyama 2018): logit = head(φ(x)) + ⟨embed(y), φ(x)⟩, φ = the inner D's features.
- ``acgan`` (Odena et al. 2017): D ignores y; an auxiliary head classifies φ(x) into K classes, see
  :meth:`ACGANDiscriminator.forward_with_aux`.

Labels are int64 (N,) in [0, num_classes).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Labels (N,) int -> (N, num_classes) rows of ``dtype`` with a single 1."""
    return F.one_hot(labels.long(), num_classes).to(dtype)


class ConditionalGenerator(nn.Module):
    """(z (N, z_dim), labels (N,)) -> samples; the inner G sees [z, one_hot(labels)]."""

    def __init__(self, inner: nn.Module, num_classes: int):
        super().__init__()
        self.inner, self.num_classes = inner, num_classes
        self.z_dim = inner.z_dim - num_classes
        self.img_shape = inner.img_shape

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.cat([z, one_hot(labels, self.num_classes, z.dtype)], dim=1))


class ConcatDiscriminator(nn.Module):
    """(x, labels) -> logits (N,); the inner D was built for ``num_classes`` more channels (``spatial``) or
    ``num_classes`` more inputs (flat)."""

    def __init__(self, inner: nn.Module, num_classes: int, spatial: bool):
        super().__init__()
        self.inner, self.num_classes, self.spatial = inner, num_classes, spatial

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = one_hot(labels, self.num_classes, x.dtype)
        if self.spatial:
            y = y[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
            return self.inner(torch.cat([x, y], dim=1))
        return self.inner(torch.cat([x.flatten(1), y], dim=1))


class ProjectionDiscriminator(nn.Module):
    """(x, labels) -> head(φ(x)) + ⟨embed(y), φ(x)⟩, (N,)."""

    def __init__(self, inner: nn.Module, num_classes: int):
        super().__init__()
        self.inner = inner
        self.embed = nn.Embedding(num_classes, inner.head.in_features)
        nn.init.xavier_uniform_(self.embed.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.inner.features(x)  # (N, F)
        return self.inner.head(h).squeeze(1) + (self.embed(labels) * h).sum(dim=1)


class ACGANDiscriminator(nn.Module):
    """x -> logits (N,); :meth:`forward_with_aux` also returns class logits (N, K)."""

    def __init__(self, inner: nn.Module, num_classes: int):
        super().__init__()
        self.inner = inner
        self.aux = nn.Linear(inner.head.in_features, num_classes)

    def forward_with_aux(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inner.features(x)
        return self.inner.head(h).squeeze(1), self.aux(h)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_aux(x)[0]
