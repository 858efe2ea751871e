"""torch's intra-op thread count, set for a block of tiny operations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the count. For work made of many tiny ops: more
    threads cost more in handing work over than they bring, and on a busy machine a thread
    waiting for a core stalls every op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
