"""ClassBalancedSampler: checked by counting what it yields."""
import random
from collections import Counter

import numpy as np
import pytest
import torch

from ila_tllib import ClassBalancedSampler
from ila_tllib.data import SeededBatches, SeededSamples

LABELS = [c for c in range(5) for _ in range(12)]        # 5 classes x 12 samples


def test_every_batch_holds_m_of_every_class_in_random_order():
    sampler = ClassBalancedSampler(LABELS, samples_per_class=3, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 60 // 15
    orders = set()
    for batch in batches:
        assert len(batch) == 15
        assert Counter(LABELS[i] for i in batch) == {c: 3 for c in range(5)}
        # samples of one class sit together; record the class order
        orders.add(tuple(LABELS[i] for i in batch[::3]))
    assert len(orders) > 1


def test_no_repeats_within_a_pass_and_reshuffle_between_passes():
    sampler = ClassBalancedSampler(LABELS, samples_per_class=3, seed=0)
    first = [i for b in sampler for i in b]
    second = [i for b in sampler for i in b]
    assert len(set(first)) == len(first) == 60
    assert first != second and sorted(first) == sorted(second)


def test_seeded_and_resumable():
    a = ClassBalancedSampler(LABELS, samples_per_class=2, seed=7)
    b = ClassBalancedSampler(LABELS, samples_per_class=2, seed=7)
    list(a)
    b.load_state_dict(a.state_dict())
    assert list(a) == list(b)


def test_small_class_cycles_never_short_batch():
    labels = [0] * 2 + [1] * 20 + [2] * 20
    sampler = ClassBalancedSampler(labels, samples_per_class=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 42 // 12
    for batch in batches:
        assert len(batch) == 12
        assert Counter(labels[i] for i in batch) == {0: 4, 1: 4, 2: 4}
    # class 0's two samples fill its 4 places of each batch: each comes back within the pass
    small = Counter(i for batch in batches for i in batch if labels[i] == 0)
    assert set(small) == {0, 1} and sum(small.values()) == 4 * len(batches)


def test_subset_of_classes_per_batch():
    labels = [c for c in range(20) for _ in range(5)]
    sampler = ClassBalancedSampler(labels, samples_per_class=2, classes_per_batch=4, seed=3)
    seen = set()
    for batch in sampler:
        counts = Counter(labels[i] for i in batch)
        assert len(counts) == 4 and set(counts.values()) == {2}
        seen |= set(counts)
    assert len(seen) > 4


def test_empty_class_is_named():
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] have no samples"):
        ClassBalancedSampler([0, 0, 1, 1, 3, 3], samples_per_class=1, num_classes=4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="empty"):
        ClassBalancedSampler([], samples_per_class=2)
    with pytest.raises(ValueError, match="classes_per_batch"):
        ClassBalancedSampler(LABELS, samples_per_class=2, classes_per_batch=9)


def test_set_epoch_draws_that_pass_and_a_rank_outside_the_processes_is_refused():
    from ila_tllib import RandomBatchSampler
    for make in (lambda **kw: ClassBalancedSampler(LABELS, samples_per_class=2, seed=3, **kw),
                 lambda **kw: RandomBatchSampler(60, 10, seed=3, **kw)):
        walked = make()
        passes = [list(walked) for _ in range(3)]           # passes 0, 1, 2 in turn
        jumped = make()
        jumped.set_epoch(2)                                 # as DistributedSampler.set_epoch
        assert list(jumped) == passes[2] != passes[1]
        for rank in (-1, 2):
            with pytest.raises(ValueError, match=rf"rank {rank} outside \[0, 2\)"):
                make(num_replicas=2, rank=rank)


def test_ranks_split_the_global_batch():
    full = list(ClassBalancedSampler(LABELS, samples_per_class=2, seed=5))
    ranks = [list(ClassBalancedSampler(LABELS, samples_per_class=2, seed=5, num_replicas=2, rank=r))
             for r in range(2)]
    assert len(full) == 60 // 10 and [len(r) for r in ranks] == [len(full)] * 2
    for g, r0, r1 in zip(full, *ranks):
        assert r0 == g[0::2] and r1 == g[1::2] and not set(r0) & set(r1)
        assert Counter(LABELS[i] for i in r0 + r1) == {c: 2 for c in range(5)}
        # with m = 2 each rank holds one sample of every class
        assert Counter(LABELS[i] for i in r0) == {c: 1 for c in range(5)}


def test_ranks_split_tllibs_random_batch_into_contiguous_slices():
    # each rank takes its contiguous slice of every global batch: together they are the one-process batches
    from ila_tllib import RandomBatchSampler
    full = list(RandomBatchSampler(60, 12, seed=4))
    ranks = [list(RandomBatchSampler(60, 12, seed=4, num_replicas=3, rank=r)) for r in range(3)]
    assert [len(r) for r in ranks] == [5] * 3
    for g, *parts in zip(full, *ranks):
        assert [len(p) for p in parts] == [4] * 3 and sum(parts, []) == g
    assert sorted(i for g in full for i in g) == list(range(60))      # one pass draws every sample once


@pytest.mark.parametrize("m, replicas, per_class", [
    (4, 4, {1}),          # divides: one of every class on every rank
    (6, 4, {1, 2}),       # m >= replicas: every class, once or twice
    (2, 4, None),         # fewer samples per class than processes: some classes only
])
def test_classes_each_rank_sees(m, replicas, per_class):
    labels = [c for c in range(4) for _ in range(24)]
    for r in range(replicas):
        batches = list(ClassBalancedSampler(labels, samples_per_class=m, seed=3, num_replicas=replicas, rank=r))
        assert len(batches) == 96 // (4 * m)
        for batch in batches:
            assert len(batch) == 4 * m // replicas
            counts = Counter(labels[i] for i in batch)
            if per_class is None:
                assert len(counts) < 4
            else:
                assert len(counts) == 4 and set(counts.values()) <= per_class, counts


def test_seeded_batches_give_each_sample_the_seed_of_its_place_in_the_run():
    def seeded():
        return SeededBatches(ClassBalancedSampler(LABELS, samples_per_class=2, seed=5), seed=7)
    sampler = seeded()
    first_pass, second_pass = list(sampler), list(sampler)
    assert [[i for i, _ in b] for b in first_pass] == list(ClassBalancedSampler(LABELS, samples_per_class=2, seed=5))
    resumed = seeded()
    resumed.resume_at(len(first_pass) + 2)       # a run resumed two batches into the second pass
    assert list(resumed) == second_pass[2:]
    seeds = [s for batch in first_pass + second_pass for _, s in batch]
    assert len(set(seeds)) == len(seeds)


def test_seeded_samples_draw_by_the_seed_and_leave_the_callers_streams_alone():
    class Draws(torch.utils.data.Dataset):
        def __len__(self):
            return 60

        def __getitem__(self, index):
            return torch.rand(()).item(), random.random(), float(np.random.rand())
    samples = SeededSamples(Draws())
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    expected = torch.rand(()).item(), random.random(), float(np.random.rand())
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    a, b, c = samples[(3, 11)], samples[(4, 11)], samples[(3, 12)]
    assert a == b and all(x != y for x, y in zip(a, c))    # the seed decides the draw, not the index
    assert (torch.rand(()).item(), random.random(), float(np.random.rand())) == expected


def test_works_with_dataloader():
    data = torch.utils.data.TensorDataset(torch.arange(60), torch.tensor(LABELS))
    loader = torch.utils.data.DataLoader(data, batch_sampler=ClassBalancedSampler(LABELS, samples_per_class=2))
    x, y = next(iter(loader))
    assert torch.equal(torch.bincount(y), torch.full((5,), 2)) and torch.equal(torch.tensor(LABELS)[x], y)


def test_a_batch_spanning_two_permutations_of_a_class_takes_no_sample_twice():
    # class 0 holds 5 >= m = 4 samples: its permutations join in the middle of batches, where the same
    # sample could come from both; each pass still draws every sample of the class as evenly as before
    labels = [0] * 5 + [1] * 20
    sampler = ClassBalancedSampler(labels, samples_per_class=4, seed=0)
    for epoch in range(200):
        sampler.set_epoch(epoch)
        drawn = Counter()
        for batch in sampler:
            assert Counter(labels[i] for i in batch) == {0: 4, 1: 4}
            zeros = [i for i in batch if labels[i] == 0]
            assert len(set(zeros)) == 4, (epoch, batch)
            drawn.update(zeros)
        assert set(drawn) == set(range(5)) and max(drawn.values()) - min(drawn.values()) <= 1, drawn


def test_joined_permutations_move_only_what_would_repeat():
    from ila_tllib.sampler import _without_repeats_across_joins
    g = torch.Generator().manual_seed(0)
    moved = 0
    for n, m, reps in ((5, 4, 6), (7, 3, 5), (9, 4, 4), (6, 6, 3), (10, 4, 5)):
        perms = [torch.randperm(n, generator=g) for _ in range(reps)]
        stream = _without_repeats_across_joins(perms, m)
        joined = torch.cat(perms)
        for start in range(0, len(stream) - m + 1, m):           # the m-blocks batches read
            block = stream[start:start + m].tolist()
            assert len(set(block)) == m
        for r in range(reps):                                    # each part is still a permutation
            assert sorted(stream[r * n:(r + 1) * n].tolist()) == list(range(n))
        # a part is changed only where its head repeats the block it shares with the part before
        for r in range(1, reps):
            taken = r * n % m
            head, before = joined[r * n:r * n + m - taken].tolist(), joined[r * n - taken:r * n].tolist()
            if not set(head) & set(before) and torch.equal(stream[:r * n], joined[:r * n]):
                assert torch.equal(stream[r * n:(r + 1) * n], joined[r * n:(r + 1) * n])
        moved += int(not torch.equal(stream, joined))
    assert moved > 0
    few = [torch.randperm(3, generator=g) for _ in range(4)]      # fewer samples than m: repeats are unavoidable
    assert torch.equal(_without_repeats_across_joins(few, 4), torch.cat(few))


def test_bad_replica_counts_and_labels_are_named():
    from ila_tllib.sampler import RandomBatchSampler
    for make in (lambda **kw: ClassBalancedSampler([0, 1, 0, 1], 2, **kw), lambda **kw: RandomBatchSampler(4, 2, **kw)):
        with pytest.raises(ValueError, match=r"num_replicas must be >= 1, got 0"):
            make(num_replicas=0)
        with pytest.raises(ValueError, match=r"rank 2 outside \[0, 2\)"):
            make(num_replicas=2, rank=2)
    with pytest.raises(ValueError, match=r"labels must be class indices >= 0, got -1"):
        ClassBalancedSampler([0, -1, 0, 1], 2)


def test_the_forever_iterator_moves_a_batch_to_the_device_keeping_its_structure():
    # a dataset of bare tensors gave a list of rows; a dict gave its keys; nested views stayed behind
    from torch.utils.data import DataLoader
    from ila_tllib.data import ResumableForeverIterator
    from ila_tllib.sampler import RandomBatchSampler

    class Items(torch.utils.data.Dataset):
        def __init__(self, item):
            self.item = item

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return self.item(i)

    def batches(item):
        loader = DataLoader(Items(item), batch_sampler=RandomBatchSampler(4, 2, seed=0))
        return next(ResumableForeverIterator(loader, device="meta"))

    tensor = batches(lambda i: torch.full((3,), float(i)))
    assert torch.is_tensor(tensor) and tensor.shape == (2, 3) and tensor.device.type == "meta"
    as_dict = batches(lambda i: {"x": torch.zeros(3), "y": i})
    assert set(as_dict) == {"x", "y"} and as_dict["x"].device.type == "meta" and as_dict["y"].device.type == "meta"
    nested = batches(lambda i: ([torch.zeros(3), torch.ones(3)], i, "path"))
    views, labels, paths = nested
    assert [v.device.type for v in views] == ["meta", "meta"] and labels.device.type == "meta"
    assert list(paths) == ["path", "path"]
