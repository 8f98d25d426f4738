"""Precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020) in feature space.

Both estimate each set's manifold as a union of balls: around every point, a ball reaching its k-th nearest
neighbour in the same set (the point itself not counted).
- precision: fraction of fakes inside the real manifold; recall: fraction of reals inside the fake manifold
  (https://arxiv.org/abs/1904.06991; their reference code uses <= and k = 3).
- density: (1 / kM) sum over fakes of the number of real balls containing it (can exceed 1);
  coverage: fraction of real balls that contain at least one fake (https://arxiv.org/abs/2002.09797;
  their reference code uses strict < and k = 5).
Distances are computed in float64 blocks, so memory is O(block x N), never N x M at once.
"""
from __future__ import annotations

import torch

from ..errors import GankitError
from .frechet import FeatureBank
from .metric import Metric, read_features, same_size, show_fields

BLOCK = 1024


def _pairwise(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (len(a), len(b)), float64."""
    return torch.cdist(a.double(), b.double())


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` (N, d) to its k-th nearest other row; (N,) float64."""
    if len(x) <= k:
        raise GankitError(f"k-NN radii with k={k} need more than {k} points, got {len(x)}")
    out = torch.empty(len(x), dtype=torch.float64)
    for i in range(0, len(x), BLOCK):
        d = _pairwise(x[i:i + BLOCK], x)
        # the k+1 smallest include the point itself at distance 0
        out[i:i + BLOCK] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def _inside_count(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, strict: bool) -> torch.Tensor:
    """For each point, how many balls (centres, radii) contain it; (len(points),) float64."""
    out = torch.empty(len(points), dtype=torch.float64)
    for i in range(0, len(points), BLOCK):
        d = _pairwise(points[i:i + BLOCK], centres)
        inside = d < radii[None] if strict else d <= radii[None]
        out[i:i + BLOCK] = inside.sum(1).double()
    return out


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall of ``fake`` (M, d) against ``real`` (N, d)."""
    precision = (_inside_count(fake, real, knn_radii(real, k), strict=False) > 0).double().mean()
    recall = (_inside_count(real, fake, knn_radii(fake, k), strict=False) > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage of ``fake`` (M, d) against ``real`` (N, d)."""
    radii = knn_radii(real, k)
    density = _inside_count(fake, real, radii, strict=True).sum() / (k * len(fake))
    # coverage: a real ball is covered when its nearest fake lies strictly inside it
    nearest = torch.empty(len(real), dtype=torch.float64)
    for i in range(0, len(real), BLOCK):
        nearest[i:i + BLOCK] = _pairwise(real[i:i + BLOCK], fake).min(1).values
    coverage = (nearest < radii).double().mean()
    return float(density), float(coverage)


# ----------------------------------------------------------------------------------------------
# The registered metrics (gankit.metrics.registry): the feature rows of both sides, k from the name.

def _bank(spec, evaluator, mixture) -> FeatureBank:
    return FeatureBank(spec.n)


def _pr(state: FeatureBank, real: FeatureBank, spec) -> dict:
    precision, recall = precision_recall(real.compute(), state.compute(), spec.k)
    return {"precision": precision, "recall": recall}


def _dc(state: FeatureBank, real: FeatureBank, spec) -> dict:
    density, coverage = density_coverage(real.compute(), state.compute(), spec.k)
    return {"density": density, "coverage": coverage}


PR = Metric("pr", "precision and recall of k-NN feature manifolds (Kynkäänniemi et al. 2019; default k 3)",
            state=_bank, read=read_features, compute=_pr, headline=show_fields("precision", "recall"),
            features=True, real_n=same_size, k=3)
DC = Metric("dc", "density and coverage (Naeem et al. 2020; default k 5)", state=_bank, read=read_features,
            compute=_dc, headline=show_fields("density", "coverage"), features=True, real_n=same_size, k=5)
