"""Shared test setup.

Without a CUDA device the Triton kernels run in Triton's CPU interpreter; the flag must be
set before any kernel module is imported, hence here.
"""

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global seed."""
    torch.manual_seed(0)
    return
