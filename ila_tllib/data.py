"""A forever iterator over a data loader that can say where it is and start again there."""
from torch.utils.data import DataLoader

__all__ = ["ResumableForeverIterator"]


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
        if self.device is not None:
            batch = [t.to(self.device) if hasattr(t, "to") else t for t in batch]
        return batch

    def __len__(self):
        return len(self.data_loader)

    def state_dict(self):
        return {"consumed": self.consumed}

    def load_state_dict(self, state):
        self.consumed, self._iter = int(state["consumed"]), None
