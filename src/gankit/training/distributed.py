"""Multi-process training on torch.distributed: set-up from torchrun's environment, and small helpers.

gankit splits every *global* batch (``train.batch_size``) into equal shards, one per rank, drawn from the same
seeded permutation; the latent vectors are drawn for the whole global batch on every rank from one shared
generator and sliced, so a run's trajectory does not depend on the number of processes (up to the order of
floating-point sums in the gradient all-reduce). G and D are wrapped in DistributedDataParallel.
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import GankitError, option


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env(device_name: str, timeout_s: float) -> DistInfo:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1), else a single-process DistInfo.

    Backend: NCCL when training on CUDA, gloo on CPU. ``timeout_s`` bounds every collective, so a rank that
    dies makes the others fail with an error instead of waiting forever.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local_rank)
        try:
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        except (RuntimeError, ValueError) as e:
            raise GankitError(f"rank {rank}: cannot join the process group ({str(e).splitlines()[0][:200]}); "
                              f"check MASTER_ADDR/MASTER_PORT or the --rdzv-endpoint of torchrun") from None
    return DistInfo(rank, world, local_rank, backend)


def device_for(info: DistInfo, device_name: str) -> str:
    """Under NCCL each process drives the GPU of its local rank."""
    if info.enabled and info.backend == "nccl":
        return f"cuda:{info.local_rank}"
    return device_name


def failure(info: DistInfo, e: BaseException) -> GankitError:
    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return GankitError(f"rank {info.rank}: distributed training stopped: {first} (another process died or timed "
                       f"out; the last checkpoint is intact, resume with {option('--resume', 'resume=True')})")


def shutdown(info: DistInfo, barrier: bool = False) -> None:
    """Leave the process group. ``barrier`` (after a run that ended normally): wait until every rank got here
    first, so no rank tears its connections down while a peer still uses them (rank 0 writes the final
    checkpoint and samples after the last collective; gloo can abort a peer whose sockets close under it). A
    barrier returns on one rank before its last message has reached every peer, so each rank then also counts
    itself out through the rendezvous store and waits (at most 10 s) until every rank has left the barrier."""
    if info.enabled and dist.is_initialized():
        try:
            if barrier:
                dist.barrier()
                _all_left(info.world_size)
            dist.destroy_process_group()
        except (RuntimeError, ValueError):  # pragma: no cover - the group may be broken already
            pass


def _all_left(world_size: int, timeout_s: float = 10.0) -> None:
    import time

    try:
        store = dist.distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError, ValueError):  # pragma: no cover - a torch without it: the barrier only
        return
    store.add("gankit/left", 1)
    end = time.monotonic() + timeout_s
    while store.add("gankit/left", 0) < world_size and time.monotonic() < end:
        time.sleep(0.01)


def launch(nproc: int, argv: list[str]) -> int:
    """``gankit train --nproc N ...``: run ``torchrun --standalone --nproc_per_node N -m gankit train ...``."""
    import subprocess

    if nproc < 1:
        raise GankitError(f"--nproc must be >= 1, got {nproc}")
    cores, gpus = os.cpu_count() or 1, torch.cuda.device_count()
    if nproc > max(cores, gpus):  # each process is a full trainer: more than the machine runs side by side
        raise GankitError(f"--nproc {nproc} is more processes than this machine has CPU cores ({cores}) or GPUs "
                          f"({gpus}); use at most {max(cores, gpus)}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "gankit", *argv]
    env = {**os.environ}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.call(cmd, env=env)
