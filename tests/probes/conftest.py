"""Probe tests run torch single-threaded.

The probes' tensors are small: a second intra-op thread gains nothing, and on a shared machine
its spinning makes elementwise ops up to 100x slower (measured: log-sigmoid of 3840 values,
0.04 ms with one thread, 4.4 ms with two while other jobs load both cores).
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
