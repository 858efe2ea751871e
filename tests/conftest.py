"""Shared test setup.

Without a CUDA device the Triton kernels run in Triton's CPU interpreter; the flag must be
set before any kernel module is imported, hence here.
"""

import os

import pytest
import torch
from hypothesis import settings

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

# Property tests draw the same examples on every run and every machine (seeded, like the
# rest of the suite): a failure in CI is one that reproduces. No example database either,
# so that an old failure replayed from .hypothesis/ cannot make two runs differ.
settings.register_profile("seeded", derandomize=True, database=None)
settings.load_profile("seeded")

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed."""
    torch.manual_seed(0)
    return
