"""Random number generators that make data reproducible, in one process or in many.

Chapter 08 ("Caption data") uses them. A generator is keyed by integers, for example
(seed, split, item) for a generated scene or (seed, epoch) for the caption a batch
picks, so the same keys give the same numbers on any machine and in any order. Inside a
`torch.utils.data.DataLoader` worker the worker's id is one more key, so two workers
never repeat each other's draws.
"""

import numpy as np
from torch.utils.data import get_worker_info


def keyed_rng(*keys: int) -> np.random.Generator:
    """A generator that depends only on `keys` (non-negative integers)."""
    return np.random.default_rng(list(keys))


def worker_rng(*keys: int) -> np.random.Generator:
    """Like `keyed_rng`, and different in each DataLoader worker (worker 0 in the main process)."""
    worker = get_worker_info()
    return keyed_rng(*keys, worker.id if worker is not None else 0)
