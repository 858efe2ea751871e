"""Run a function on W gloo processes on this machine and collect what each rank returns."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _worker(rank: int, world: int, init: str, out: str, fn: Callable, args: tuple) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        torch.save(fn(rank, world, *args), f"{out}.{rank}")
        # no rank tears its connections down while another may still be talking to it
        # (a rank with an empty shard finishes first; gloo aborts a process whose peer
        # closed a connection under a pending operation)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_ranks(fn: Callable[..., Any], world: int, *args: Any) -> list[Any]:
    """fn(rank, world, *args) on each of `world` processes; their results in rank order.

    fn must be a module-level function (it is pickled into freshly spawned processes).
    """
    with tempfile.TemporaryDirectory() as folder:
        init, out = os.path.join(folder, "init"), os.path.join(folder, "out")
        mp.spawn(_worker, args=(world, init, out, fn, args), nprocs=world, join=True)
        return [torch.load(f"{out}.{rank}", weights_only=False) for rank in range(world)]
