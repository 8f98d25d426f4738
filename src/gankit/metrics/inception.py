"""Inception FID / KID / IS through torch-fidelity: an optional extra, detected at runtime.

gankit's own metrics use a domain classifier (docs/PROTOCOLS.md §4). The standard Inception numbers need
torch-fidelity (which pulls torchvision) and its Inception weights (downloaded on first use), so they are
optional: ``pip install torch-fidelity`` on a machine that has the weights or can download them. Where either
is missing this module says which and why, in one line, instead of failing deep inside a download.
"""
from __future__ import annotations

import importlib.util

import torch

from ..data import Dataset
from ..errors import GankitError
from .metric import Metric

KINDS = {"ifid": "fid", "ikid": "kid", "iis": "isc"}
# registered in gankit.metrics.registry; no state: scored here, outside the streaming loop
IFID = Metric("ifid", "Inception FID via torch-fidelity (optional extra; needs the Inception weights)")
IKID = Metric("ikid", "Inception KID via torch-fidelity (optional extra)")
IIS = Metric("iis", "Inception Score via torch-fidelity (optional extra)")


def available() -> tuple[bool, str]:
    """(True, '') when torch-fidelity can be imported, else (False, why)."""
    if importlib.util.find_spec("torch_fidelity") is None:
        return False, ("Inception metrics need the optional package torch-fidelity (pip install torch-fidelity; it "
                       "installs torchvision) and its Inception weights, downloaded on first use; it is not installed "
                       "here. gankit's own fd/kid/is need neither")
    return True, ""


class _Uint8Images(torch.utils.data.Dataset):
    """uint8 (N, 3, H, W) images as torch-fidelity wants them (grayscale repeated to 3 channels)."""

    def __init__(self, images: torch.Tensor):
        self.images = images if images.shape[1] == 3 else images[:, :1].repeat(1, 3, 1, 1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def inception_metrics(sampler, real: Dataset, kinds: list[str], n: int, batch_size: int = 500,
                      cuda: bool | None = None) -> dict:
    """Score ``n`` samples against ``real`` with torch-fidelity; ``kinds`` from ifid, ikid, iis."""
    ok, why = available()
    if not ok:
        raise GankitError(why)
    import torch_fidelity  # noqa: WPS433 - optional extra, imported only here

    chunks, done = [], 0
    while done < n:
        b = min(batch_size, n - done)
        chunks.append(((sampler(b).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8))
        done += b
    fake = torch.cat(chunks)
    flags = {KINDS[k]: True for k in kinds}
    try:
        out = torch_fidelity.calculate_metrics(
            input1=_Uint8Images(fake), input2=_Uint8Images(real.images), cuda=torch.cuda.is_available()
            if cuda is None else cuda, verbose=False, kid_subset_size=min(1000, n, len(real)), **flags)
    except Exception as e:  # noqa: BLE001 - any failure here is the optional extra's, reported in one line
        raise GankitError(f"torch-fidelity could not compute {', '.join(kinds)} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}); offline machines need the Inception "
                          f"weights in torch-fidelity's cache") from None
    return {"inception": {k: float(v) for k, v in out.items()}, "n_fake": n, "n_real": len(real)}
