"""Data-parallel training under torchrun: this process's rank, and the few collectives the loop needs.

``torchrun --nproc-per-node N [--nnodes M --rdzv-endpoint HOST:PORT] -m seqcast fit ...`` starts N
processes per machine with RANK, WORLD_SIZE and LOCAL_RANK set; ``from_environment`` joins them in
one process group (gloo on the CPU, nccl on CUDA). ``training.train`` then wraps the model in
DistributedDataParallel, gives each rank its shard of every epoch's windows (the same permutation
on every rank, from the seed), and sums the validation loss over the ranks' shards, so that every
rank stops, and keeps its weights, at the same round. Rank 0 alone reports and writes the checkpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import PeerLostError, UsageError

# What torch.distributed's backends say when another process of the run went away (killed, out of
# memory, its host gone): a RuntimeError whose text names the transport.
_PEER_GONE = ("gloo", "nccl", "connection reset", "connection closed", "closed by peer", "broken pipe",
              "socket timeout", "timed out")


@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel run."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int  # the processes of this run on this machine
    backend: str  # gloo or nccl

    def shard(self, n: int) -> tuple[int, int]:
        """The contiguous part [start, end) of ``n`` items that this rank takes (sizes differ by at most one)."""
        return self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size

    def all_sum(self, values: list[float], device=None) -> list[float]:
        """Each value summed over the ranks (float64)."""
        import torch
        import torch.distributed as dist

        total = torch.tensor(values, dtype=torch.float64, device=device if self.backend == "nccl" else "cpu")
        dist.all_reduce(total)
        return total.tolist()

    def all_agree(self, ok: bool) -> bool:
        """True on every rank when ``ok`` is true on every rank (a decision one rank makes alone, such
        as whether its output may be written, reaches all before any starts work)."""
        return self.all_sum([0.0 if ok else 1.0], self._device())[0] == 0

    def _device(self):
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"


def from_environment(device: str) -> Distributed | None:
    """The process group torchrun set up for this process, joined; None when not under torchrun (or
    with a world of one). ``device`` is fit's --device: nccl for cuda, gloo otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world_size <= 1:
        return None
    import torch
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group(backend=backend)
    except (RuntimeError, ValueError) as exc:
        raise UsageError(f"torchrun: cannot join the process group of {world_size} processes "
                         f"({str(exc).splitlines()[0]}); check --rdzv-endpoint and that every node can reach it") from None
    return Distributed(rank, world_size, local_rank, local_world_size, backend)


def peer_failure(exc: BaseException, context: Distributed | None) -> PeerLostError | None:
    """The PeerLostError (exit 2) for a collective that failed because another process of the run
    stopped, so that this one ends with what happened instead of an unexpected error; None otherwise."""
    text = str(exc)
    if context is None or not isinstance(exc, RuntimeError) or not any(m in text.lower() for m in _PEER_GONE):
        return None
    detail = text.splitlines()[0] if text else type(exc).__name__
    if len(detail) > 200:
        detail = detail[:200] + "..."
    return PeerLostError(f"torchrun: another of the {context.world_size} processes of this run stopped while "
                        f"rank {context.rank} was training ({detail}); nothing was written. Its own messages say "
                        "why; run the command again")


def close(context: Distributed | None) -> None:
    if context is not None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
