"""A forever iterator over a data loader that can say where it is and start again there, and per-sample
seeds that make a loader's random transforms independent of its worker processes."""
import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["ResumableForeverIterator", "SeededBatches", "SeededSamples"]

_MASK64 = (1 << 64) - 1


def _mix(*values: int) -> int:
    """A 63-bit seed from integers (SplitMix64's finaliser over each in turn)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = ((h ^ (int(v) & _MASK64)) * 0xBF58476D1CE4E5B9) & _MASK64
        h = ((h ^ (h >> 27)) * 0x94D049BB133111EB) & _MASK64
        h ^= h >> 31
    return h >> 1


class SeededBatches:
    """A resumable batch sampler's batches as ``(index, seed)`` pairs, for :class:`SeededSamples`.

    A worker process draws a random transform from its own RNG, seeded once per pass, so which worker loads
    a batch, and how many batches came before it in that worker, decide the draw: a resumed run (which
    skips into a pass, from a new generator) transformed its images otherwise than an uninterrupted one.
    Here a sample's seed depends only on ``seed``, the pass, the batch's number in the pass, the process
    and the sample's place in the batch. Everything else (``resume_at``, ``set_epoch``, ``len``…) is the
    wrapped sampler's.

    Args:
        batch_sampler: a :class:`~ila_tllib.sampler.ClassBalancedSampler` or
            :class:`~ila_tllib.sampler.RandomBatchSampler`
        seed (int): the loader's seed
    """

    def __init__(self, batch_sampler, seed: int):
        self.batch_sampler, self.seed = batch_sampler, int(seed)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __getattr__(self, name):
        if name == "batch_sampler":    # not set yet (copies): no recursion
            raise AttributeError(name)
        return getattr(self.batch_sampler, name)

    def __iter__(self):
        inner = self.batch_sampler
        pass_index, first, rank = inner.pass_index, inner.skip, getattr(inner, "rank", 0)
        for number, batch in enumerate(inner, start=first):
            yield [(index, _mix(self.seed, pass_index, number, rank, place)) for place, index in enumerate(batch)]


class SeededSamples(Dataset):
    """``dataset[index]`` with torch's CPU generator, ``random`` and NumPy seeded by the ``seed`` of an
    ``(index, seed)`` item (from :class:`SeededBatches`) and put back afterwards, so the caller's random
    streams (dropout, in a loader without workers) do not move."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item):
        index, seed = item
        generator = torch.random.default_generator
        saved = generator.get_state(), random.getstate(), np.random.get_state()
        generator.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2 ** 32)
        try:
            return self.dataset[index]
        finally:
            generator.set_state(saved[0])
            random.setstate(saved[1])
            np.random.set_state(saved[2])


def _to_device(batch, device):
    """``batch`` with every tensor in it moved to ``device``, its structure kept: a tensor, or lists, tuples
    and dicts of them, nested (as tllib's ``send_to_device``)."""
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        return type(batch)((key, _to_device(value, device)) for key, value in batch.items())
    if isinstance(batch, (list, tuple)):
        moved = [_to_device(value, device) for value in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)   # a namedtuple too
    return batch


class ResumableForeverIterator:
    """Like tllib's ``ForeverDataIterator`` (``next()`` forever, a new pass when the loader ends), and
    it counts the batches it handed out, so a resumed run continues with the very next batch.

    The loader must use a batch sampler with ``resume_at(batches_consumed)``
    (:class:`~ila_tllib.sampler.ClassBalancedSampler`, :class:`~ila_tllib.sampler.RandomBatchSampler`).
    Counting here rather than in the sampler matters: worker processes prefetch batches ahead of use.

    Args:
        data_loader (DataLoader): the loader.
        device (torch.device, optional): where to move the batch's tensors.
    """

    def __init__(self, data_loader: DataLoader, device=None):
        if not hasattr(data_loader.batch_sampler, "resume_at"):
            raise TypeError("ResumableForeverIterator needs a loader whose batch_sampler has resume_at()")
        self.data_loader, self.device = data_loader, device
        self.consumed = 0
        self._iter = None

    def __next__(self):
        if self._iter is None:
            self.data_loader.batch_sampler.resume_at(self.consumed)
            self._iter = iter(self.data_loader)
        try:
            batch = next(self._iter)
        except StopIteration:
            self._iter = iter(self.data_loader)
            batch = next(self._iter)
        self.consumed += 1
        return batch if self.device is None else _to_device(batch, self.device)

    def __len__(self):
        return len(self.data_loader)

    def state_dict(self):
        return {"consumed": self.consumed}

    def load_state_dict(self, state):
        self.consumed, self._iter = int(state["consumed"]), None
