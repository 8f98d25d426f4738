"""Self-conditioning: a dataset's labels replaced by k-means clusters of its pixels (``data.clusters``).

A class-conditional GAN beats an unconditional one of the same size by far (on Fashion-MNIST in docs/ZOO.md,
cgan-mnist's FD is a third of dcgan-mnist's at equal minutes), but it reads human labels. Self-conditioning
(Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs") takes the labels from a clustering of the
data instead, so the model stays unconditional from the user's side: no label is read, and sampling draws each
cluster in proportion to its size. Liu et al. cluster D's features and re-cluster during training; gankit clusters
the pixels once, before the first step, which costs seconds and already carries most of the gain (docs/ZOO.md
"How quick-mnist was chosen").

The clustering is k-means++ seeding (Arthur & Vassilvitskii 2007) and at most :data:`ITERS` Lloyd iterations, the
distances in float64 on the CPU (so a resume or another rank gets the same labels), an empty cluster re-seeded at
the point farthest from its centre. Clusters are numbered by size, largest first.
"""
from __future__ import annotations

import hashlib

import torch

from ..errors import GankitError

ITERS = 20
def _nearest(x: torch.Tensor, xx: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index of the nearest centre, squared distance to it) of every row of ``x`` (float64, row norms ``xx``)."""
    d2 = torch.addmm((centres * centres).sum(1), x, centres.T, alpha=-2).add_(xx[:, None])
    m, i = d2.min(1)
    return i, m.clamp_(min=0)


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = ITERS) -> tuple[torch.Tensor, torch.Tensor]:
    """Cluster the rows of ``x`` (N, ...): (labels int64 (N,), centres float64 (k, D)). The labels are the nearest
    centre of each row, numbered by cluster size (0 the largest); the same ``x``, ``k`` and ``seed`` give the same
    labels. Works on a float64 copy of ``x`` (8 bytes a value: 380 MB for 60,000 images of 28x28)."""
    n = x.shape[0]
    if not 1 <= k <= n:
        raise GankitError(f"data.clusters {k}: needs between 1 and the {n:,} training examples")
    from ..memory import check_fits

    check_fits(2 * x[0].numel() * n * 8, f"k-means of {n:,} examples of {x[0].numel():,} values (data.clusters)",
               "cluster fewer or smaller images")  # the float64 copy and its square
    x = x.reshape(n, -1).cpu().double()
    xx = (x * x).sum(1)
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(n, (1,), generator=g)].clone()
    _, d2 = _nearest(x, xx, centres)
    for _ in range(1, k):  # k-means++: the next centre with probability proportional to D(x)^2
        pick = torch.multinomial(d2, 1, generator=g) if d2.sum() > 0 else torch.randint(n, (1,), generator=g)
        centres = torch.cat([centres, x[pick]])
        d2 = torch.minimum(d2, _nearest(x, xx, centres[-1:])[1])
    labels = None
    for _ in range(iters):
        new, d2 = _nearest(x, xx, centres)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums = torch.zeros_like(centres).index_add_(0, labels, x)
        counts = torch.bincount(labels, minlength=k)
        for j in torch.nonzero(counts == 0).flatten().tolist():  # an empty cluster: re-seed at the worst-fit point
            far = int(d2.argmax())
            sums[j], counts[j], d2[far] = x[far], 1, 0.0
        centres = sums / counts[:, None]
    labels, _ = _nearest(x, xx, centres)
    order = torch.argsort(-torch.bincount(labels, minlength=k), stable=True)  # largest first
    rank = torch.empty_like(order)
    rank[order] = torch.arange(k)
    return rank[labels], centres[order]


def shares(labels: torch.Tensor, k: int) -> torch.Tensor:
    """Each class's share of ``labels`` (k,) float64, summing to 1."""
    counts = torch.bincount(labels.cpu(), minlength=k).double()
    return counts / counts.sum()


def digest(labels: torch.Tensor) -> str:
    """A short fingerprint of a labelling: a resume checks it still clusters the data the same way."""
    return hashlib.sha256(labels.cpu().to(torch.int64).numpy().tobytes()).hexdigest()[:16]


def draw_labels(shares: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` labels int64 drawn i.i.d. with probabilities ``shares`` (inverse CDF of uniforms from ``generator``,
    on the shares' device: no host sync, so a CUDA graph can hold it)."""
    u = torch.rand(n, device=shares.device, dtype=shares.dtype, generator=generator)
    return torch.searchsorted(torch.cumsum(shares, 0), u, right=True).clamp_(max=shares.numel() - 1)


def spread_labels(shares: torch.Tensor, start: int, n: int) -> torch.Tensor:
    """Labels of samples ``start`` to ``start + n - 1`` of a sampler: sample i takes the class at the point
    frac(i·φ⁻¹) of the cumulative shares (the golden-ratio sequence), so any run of samples follows the shares
    closely and the same index always gets the same class."""
    u = (torch.arange(start, start + n, dtype=torch.float64) * 0.6180339887498949) % 1.0
    cum = torch.cumsum(shares.double().cpu(), 0)
    return torch.searchsorted(cum, u, right=True).clamp_(max=shares.numel() - 1)


def relabel(ds, k: int, seed: int, log=print):
    """``ds`` (a :class:`~gankit.data.Dataset`) with its labels replaced by ``k`` k-means clusters of its pixels:
    (dataset, shares (k,) float64, digest)."""
    from dataclasses import replace

    labels, _ = kmeans(ds.images, k, seed)
    s = shares(labels, k)
    log(f"self-conditioning: {k} k-means clusters of the {len(ds):,} training images (data.clusters; no label is "
        f"read), sizes {100 * s.max():.1f}% to {100 * s.min():.1f}%")
    return replace(ds, labels=labels, num_classes=k), s, digest(labels)
