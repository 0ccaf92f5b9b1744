"""Class-balanced batches for the labelled source domain (ILA-DA, Sec. 3.3)."""
from typing import Iterator, List, Optional, Sequence

import torch
from torch.utils.data import Sampler

__all__ = ["ClassBalancedSampler", "RandomBatchSampler"]


class _ResumableBatchSampler(Sampler[List[int]]):
    """Passes numbered from 0, each seeded by ``(seed, pass)``; ``resume_at`` skips into a pass without
    loading anything, so a resumed run sees exactly the batches an uninterrupted run would have."""

    seed: int
    pass_index: int = 0
    skip: int = 0

    @staticmethod
    def _check_replicas(num_replicas: int, rank: int):
        """Before any division by ``num_replicas``."""
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be >= 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside [0, {num_replicas})")

    def _shard(self, num_replicas: int, rank: int):
        self._check_replicas(num_replicas, rank)
        self.num_replicas, self.rank = num_replicas, rank

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.pass_index)

    def set_epoch(self, epoch: int):
        """Choose which pass the next ``iter()`` draws (as ``DistributedSampler.set_epoch``)."""
        self.pass_index, self.skip = epoch, 0

    def resume_at(self, batches_consumed: int):
        """Position the sampler after ``batches_consumed`` batches of the whole run."""
        self.pass_index, self.skip = divmod(int(batches_consumed), len(self))

    def state_dict(self):
        """Where the next ``iter()`` starts. A pass under way counts as drawn: the sampler cannot know how many
        of its batches were used (loader workers fetch ahead), so to continue inside a pass give
        :meth:`resume_at` the batches consumed, as the training engine's ``--resume`` does."""
        return {"pass_index": self.pass_index, "skip": self.skip}

    def load_state_dict(self, state):
        self.pass_index, self.skip = int(state["pass_index"]), int(state.get("skip", 0))

    def __iter__(self) -> Iterator[List[int]]:
        g, skip = self._generator(), self.skip
        self.pass_index, self.skip = self.pass_index + 1, 0
        for i, batch in enumerate(self._batches(g)):
            if i >= skip:
                yield batch

    def _batches(self, g: torch.Generator) -> Iterator[List[int]]:
        raise NotImplementedError


class ClassBalancedSampler(_ResumableBatchSampler):
    r"""Batch sampler yielding ``samples_per_class`` indices of every class per batch, classes in random order.

    The ratio test of ILA-DA compares the top-``m`` like and unlike similarities, which is only fair
    when every class of the batch holds the same ``m`` samples. With hundreds of classes a batch may
    hold a random subset of ``classes_per_batch`` classes instead (the paper notes the affinity matrix
    is memory-hungry).

    Every pass walks each class through a fresh permutation of its samples, so within a pass a sample
    repeats only when its class has fewer samples than the pass draws from it, and within a batch only
    when its class has fewer than ``samples_per_class``. A pass has
    ``max(1, len(labels) // batch_size)`` batches and never yields a short one; each pass reshuffles
    (seeded by ``seed`` and the pass number, so runs and resumed runs repeat exactly).

    For data parallelism give ``num_replicas`` and ``rank``: all ranks draw the same *global* batch and
    each takes every ``num_replicas``-th sample of it, so the global batch is class-balanced and the ranks'
    samples are disjoint within it. A process sees every class of the batch when
    ``samples_per_class >= num_replicas``, each equally often when ``num_replicas`` divides it; with fewer
    samples per class than processes each process holds only some classes.

    Args:
        labels (sequence of int): the label of every sample, read without decoding images.
        samples_per_class (int): :math:`m`.
        classes_per_batch (int, optional): classes per (global) batch; ``None`` = all classes.
        num_classes (int, optional): expected number of classes; a class in ``range(num_classes)``
            without samples is an error (it could never be balanced).
        seed (int): base seed. Default: 0
        num_replicas (int): number of data-parallel processes. Default: 1
        rank (int): this process. Default: 0
    """

    def __init__(self, labels: Sequence[int], samples_per_class: int, classes_per_batch: Optional[int] = None,
                 num_classes: Optional[int] = None, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        labels = torch.as_tensor(list(labels) if not torch.is_tensor(labels) else labels, dtype=torch.long)
        if labels.numel() == 0:
            raise ValueError("ClassBalancedSampler got no labels: the source dataset is empty")
        if samples_per_class < 1:
            raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
        self._check_replicas(num_replicas, rank)
        if int(labels.min()) < 0:
            raise ValueError(f"labels must be class indices >= 0, got {int(labels.min())}")
        counts = torch.bincount(labels, minlength=num_classes or 0)
        if num_classes is not None:
            if counts.numel() > num_classes:
                raise ValueError(f"labels go up to {counts.numel() - 1} but num_classes={num_classes}")
            empty = (counts == 0).nonzero().flatten().tolist()
            if empty:
                raise ValueError(f"class(es) {empty[:10]} have no samples, so a class-balanced batch cannot be "
                                 f"built; drop them from the class list or give --samples-per-class 0 to "
                                 f"sample the source at random")
        self.classes = (counts > 0).nonzero().flatten()
        self.class_members = [(labels == c).nonzero().flatten() for c in self.classes.tolist()]
        n_classes = len(self.classes)
        self.classes_per_batch = n_classes if classes_per_batch is None else int(classes_per_batch)
        if not 1 <= self.classes_per_batch <= n_classes:
            raise ValueError(f"classes_per_batch={classes_per_batch} must lie in [1, {n_classes}] "
                             f"(the number of classes with samples)")
        self.samples_per_class = int(samples_per_class)
        self.batch_size = self.classes_per_batch * self.samples_per_class     # the global batch
        if self.batch_size % num_replicas != 0:
            raise ValueError(f"the global batch of {self.batch_size} samples cannot be split evenly over "
                             f"{num_replicas} processes; change --samples-per-class or the process count")
        self._shard(num_replicas, rank)
        self.num_samples = labels.numel()
        self.seed = seed
        self.pass_index = 0

    def __len__(self) -> int:
        return max(1, self.num_samples // self.batch_size)

    def _batches(self, g: torch.Generator) -> Iterator[List[int]]:
        n_batches, n_classes, m = len(self), len(self.classes), self.samples_per_class
        # which classes each batch holds, in random order
        order = torch.stack([torch.randperm(n_classes, generator=g)[:self.classes_per_batch]
                             for _ in range(n_batches)])                       # (n_batches, classes_per_batch)
        draws = torch.bincount(order.flatten(), minlength=n_classes) * m
        # per class, a stream of fresh permutations long enough for this pass
        streams = []
        for members, need in zip(self.class_members, draws.tolist()):
            reps = max(1, -(-need // len(members)))
            streams.append(_without_repeats_across_joins(
                [members[torch.randperm(len(members), generator=g)] for _ in range(reps)], m))
        cursor = [0] * n_classes
        for row in order.tolist():
            batch = []
            for c in row:
                batch.extend(streams[c][cursor[c]:cursor[c] + m].tolist())
                cursor[c] += m
            # every num_replicas-th sample: the ranks' slices are disjoint and, with m a multiple of
            # num_replicas, each is class-balanced (its BatchNorm statistics and CE too)
            yield batch[self.rank::self.num_replicas]


def _without_repeats_across_joins(permutations: List[torch.Tensor], m: int) -> torch.Tensor:
    """The permutations of one class's samples, joined, where a batch's ``m`` samples that span the join of
    two permutations take no sample twice: a sample of the next permutation's head that the batch already
    took from the previous one trades places with the first sample later in that permutation that it did
    not take. Each part stays a permutation, and where nothing repeats nothing moves. A class of fewer
    than ``m`` samples must repeat one in every batch, and does."""
    n = len(permutations[0])
    if n < m:
        return torch.cat(permutations)
    parts = [permutations[0]]
    for r, perm in enumerate(permutations[1:], start=1):
        taken = r * n % m                     # samples the spanning batch took from the previous permutation
        if taken:
            before = parts[-1][-taken:]
            repeated = torch.isin(perm, before)
            clash = repeated[:m - taken].nonzero().flatten()
            if len(clash):
                free = (~repeated[m - taken:]).nonzero().flatten()[:len(clash)] + (m - taken)
                perm = perm.clone()
                perm[clash], perm[free] = perm[free].clone(), perm[clash].clone()
        parts.append(perm)
    return torch.cat(parts)


class RandomBatchSampler(_ResumableBatchSampler):
    """Shuffled batches of a fixed size, the last short one dropped — tllib's random sampling — made
    resumable and shardable like :class:`ClassBalancedSampler`.

    Args:
        num_samples (int): dataset size.
        batch_size (int): the global batch size.
        seed (int): base seed. Default: 0
        num_replicas (int), rank (int): as :class:`ClassBalancedSampler`; each rank takes a contiguous
            slice of every global batch.
    """

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        if batch_size < 1 or num_samples < batch_size:
            raise ValueError(f"cannot draw batches of {batch_size} from {num_samples} samples")
        self._check_replicas(num_replicas, rank)
        if batch_size % num_replicas != 0:
            raise ValueError(f"the batch of {batch_size} cannot be split evenly over {num_replicas} processes")
        self._shard(num_replicas, rank)
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.pass_index, self.skip = 0, 0

    def __len__(self) -> int:
        return self.num_samples // self.batch_size

    def _batches(self, g: torch.Generator) -> Iterator[List[int]]:
        order = torch.randperm(self.num_samples, generator=g)
        per_rank = self.batch_size // self.num_replicas
        for b in range(len(self)):
            start = b * self.batch_size + self.rank * per_rank
            yield order[start:start + per_rank].tolist()
