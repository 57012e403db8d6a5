import pytest
import torch

from finsta_core import FinstaConfig, collate_graphs
from finsta_core.testing import random_hsg


@pytest.fixture
def small_cfg():
    return FinstaConfig.preset("small", d_model=32, heads=4)


@pytest.fixture
def graphs():
    return [random_hsg(i, num_frames=5, num_objects=3) for i in range(3)]


@pytest.fixture
def batch(graphs):
    return collate_graphs(graphs)


@pytest.fixture(autouse=True)
def _seed():
    # one intra-op thread: these graphs are tiny, and on a shared 2-core machine a second OpenMP thread
    # spin-waits behind other processes (steps went from 18 ms to ~0.8 s)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)
