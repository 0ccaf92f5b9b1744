"""The source bank (--ila-source-bank): its ring buffer against per-class queues, and ILA's decisions and loss
with remembered voters against the plain-loop oracle."""
from collections import deque

import pytest
import torch

from ila_oracle import ila_oracle
from ila_tllib import ILALoss
from ila_tllib.memory import SourceFeatureBank, rank_within_class


def test_rank_within_class_counts_earlier_rows_of_the_same_label():
    y = torch.tensor([2, 0, 2, 2, 1, 0, 2])
    expected = [sum(1 for earlier in y[:i].tolist() if earlier == label) for i, label in enumerate(y.tolist())]
    assert rank_within_class(y, 3).tolist() == expected == [0, 0, 1, 2, 0, 1, 3]


def _bank_as_queues(bank):
    features, labels = bank.entries()
    queues = {}
    for f, c in zip(features.tolist(), labels.tolist()):
        queues.setdefault(c, []).append(tuple(f))
    return {c: sorted(q) for c, q in queues.items()}


def test_bank_keeps_the_most_recent_features_of_each_class():
    torch.manual_seed(0)
    size, classes = 3, 4
    bank, oracle = SourceFeatureBank(size), {c: deque(maxlen=size) for c in range(classes)}
    # uneven batches, one with five rows of class 1 (more than the bank holds), one without class 3
    for labels in ([0, 1, 2, 3], [1, 1, 1, 1, 1, 0], [2, 0, 2], [3, 3, 1, 0, 2, 2, 2, 2]):
        y = torch.tensor(labels)
        f = torch.randn(len(labels), 2)
        bank.push(f, y, classes)
        for row, c in zip(f.tolist(), labels):
            oracle[c].append(tuple(row))
        assert _bank_as_queues(bank) == {c: sorted(q) for c, q in oracle.items() if q}
        assert bank.filled.tolist() == [len(oracle[c]) for c in range(classes)]


def test_bank_refuses_a_batch_of_another_shape_once_filled():
    bank = SourceFeatureBank(2)
    bank.push(torch.randn(3, 4), torch.tensor([0, 1, 2]), 3)
    with pytest.raises(ValueError, match="source bank holds 3 classes of width 4"):
        bank.push(torch.randn(3, 5), torch.tensor([0, 1, 2]), 3)
    with pytest.raises(ValueError, match="at least one"):
        SourceFeatureBank(0)


def _batch(seed, n_per_class=2, classes=3, n_t=7, dim=3):
    g = torch.Generator().manual_seed(seed)
    f_s = torch.randn(n_per_class * classes, dim, generator=g, dtype=torch.float64)
    y_s = torch.arange(classes).repeat(n_per_class)
    f_t = torch.randn(n_t, dim, generator=g, dtype=torch.float64)
    return f_s, y_s, f_t


def _with_remembered(batches):
    """Each batch with what a bank of 4 per class remembers then (2 sources per class per batch: the two
    batches before it), as the oracle's ``remembered`` lists."""
    for i, batch in enumerate(batches):
        earlier = batches[max(0, i - 2):i]
        yield batch, ([row for b in earlier for row in b[0].detach().tolist()],
                      [c for b in earlier for c in b[1].tolist()])


def test_remembered_sources_vote_but_only_the_batch_is_contrasted():
    loss = ILALoss(k=3, mu=0.6, source_bank=4)
    for (f_s, y_s, f_t), remembered in _with_remembered([_batch(seed) for seed in range(4)]):
        f_s.requires_grad_(True)
        value = loss(f_s, y_s, f_t, num_classes=3)
        ref_loss, labels, gammas, kept, affinity = ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), 3, 0.6,
                                                              remembered=remembered)
        assert loss.pseudo_labels.tolist() == labels
        assert torch.allclose(loss.ratio, torch.tensor(gammas, dtype=torch.float64))
        assert set(torch.nonzero(loss.kept).flatten().tolist()) == kept
        assert loss.affinity.tolist() == affinity            # the batch's rows only
        assert value.item() == pytest.approx(ref_loss, rel=1e-9)
        value.backward()
        assert f_s.grad is not None and torch.isfinite(f_s.grad).all()


def test_bank_anchors_are_contrasted_as_constants_after_the_batch():
    # --ila-bank-anchors: the remembered sources join Eq. 4-5 as well, with their affinity rows
    loss = ILALoss(k=3, mu=0.6, source_bank=4, bank_anchors=True)
    for (f_s, y_s, f_t), remembered in _with_remembered([_batch(seed) for seed in range(4)]):
        f_s.requires_grad_(True)
        f_t.requires_grad_(True)
        value = loss(f_s, y_s, f_t, num_classes=3)
        ref_loss, labels, _, kept, affinity = ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), 3, 0.6,
                                                         remembered=remembered, contrast_remembered=True)
        assert loss.pseudo_labels.tolist() == labels
        assert set(torch.nonzero(loss.kept).flatten().tolist()) == kept
        assert loss.affinity.tolist() == affinity[:len(y_s)]   # the batch's rows, as without anchors
        assert value.item() == pytest.approx(ref_loss, rel=1e-9)
        value.backward()
        assert torch.isfinite(f_s.grad).all() and torch.isfinite(f_t.grad).all()
        assert not loss.bank.features.requires_grad and loss.bank.features.grad is None
    with pytest.raises(ValueError, match="give source_bank > 0"):
        ILALoss(bank_anchors=True)


def test_bank_changes_the_vote_when_the_batch_alone_is_misleading():
    # the batch's nearest source to the target is of class 1; a remembered class-0 source is nearer still
    loss, without = ILALoss(k=1, mu=1.0, source_bank=4), ILALoss(k=1, mu=1.0)
    loss(torch.tensor([[0.0], [0.1], [5.0], [5.1]]), torch.tensor([0, 0, 1, 1]), torch.tensor([[0.05]]),
         num_classes=2)
    f_s, y_s, f_t = torch.tensor([[10.0], [0.9]]), torch.tensor([0, 1]), torch.tensor([[0.45]])
    without(f_s, y_s, f_t, num_classes=2)
    loss(f_s, y_s, f_t, num_classes=2)
    assert without.pseudo_labels.tolist() == [1]      # 0.9 is 0.45 away, 10.0 is 9.55 away
    assert loss.pseudo_labels.tolist() == [0]         # the remembered 0.1 is 0.35 away
    assert loss.affinity.shape == (2, 1)


def test_bank_state_resumes_the_same_decisions():
    a = ILALoss(k=3, mu=0.6, source_bank=4)
    for seed in range(2):
        a(*_batch(seed), num_classes=3)
    b = ILALoss(k=3, mu=0.6, source_bank=4)
    b.load_state_dict(a.state_dict())
    nxt = _batch(7)
    assert a(*nxt, num_classes=3).item() == b(*nxt, num_classes=3).item()
    assert torch.equal(a.ratio, b.ratio) and torch.equal(a.bank.features, b.bank.features)


def test_a_bank_first_filled_under_inference_mode_goes_on_filling_outside_it():
    # its buffers were inference tensors, which an ordinary call could not write to
    f_s, y_s = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    f_t = torch.randn(6, 4)
    after_inference, after_no_grad = ILALoss(k=3, source_bank=2), ILALoss(k=3, source_bank=2)
    with torch.inference_mode():
        after_inference(f_s, y_s, f_t, num_classes=4)
    with torch.no_grad():
        after_no_grad(f_s, y_s, f_t, num_classes=4)
    later = torch.randn(8, 4, requires_grad=True)
    loss = after_inference(later, y_s, f_t, num_classes=4)
    assert loss.item() == after_no_grad(later, y_s, f_t, num_classes=4).item()
    assert torch.equal(after_inference.bank.features, after_no_grad.bank.features)
    loss.backward()


def test_bank_of_another_size_does_not_load():
    a = ILALoss(k=3, mu=0.6, source_bank=4)
    a(*_batch(0), num_classes=3)
    with pytest.raises(RuntimeError, match="keeps 4 features per class, this one 2"):
        ILALoss(k=3, mu=0.6, source_bank=2).load_state_dict(a.state_dict())


def test_bank_needs_the_number_of_classes():
    with pytest.raises(ValueError, match="needs num_classes"):
        ILALoss(source_bank=2)(*_batch(0))


def _msc_loop(f_s, f_t, affinity, temperature=1.0):
    """Eq. 4-5 over given affinity rows, in loops (the oracle's loss with the decisions fixed)."""
    import math
    from ila_oracle import phi
    per_source = []
    for i, row in enumerate(affinity):
        pos = [j for j, a in enumerate(row) if a == 1]
        neg = [j for j, a in enumerate(row) if a == -1]
        if pos and neg:
            num = sum(math.exp(phi(f_s[i], f_t[j]) / temperature) for j in pos)
            den = num + sum(math.exp(phi(f_s[i], f_t[j]) / temperature) for j in neg)
            per_source.append(-math.log(num / den))
    return sum(per_source) / len(per_source) if per_source else 0.0


@pytest.mark.parametrize("bank", [0, 4])
def test_mining_features_decide_and_the_own_features_are_contrasted(bank):
    loss = ILALoss(k=3, mu=0.6, source_bank=bank)
    previous, contrasted = None, 0
    for seed in range(3):
        f_s, y_s, f_t = _batch(seed)
        g_s, _, g_t = _batch(100 + seed)                      # other features of the same samples
        f_s.requires_grad_(True)
        value = loss(f_s, y_s, f_t, num_classes=3, mining_features=(g_s, g_t))
        remembered = ((), ()) if not (bank and previous) else previous
        _, labels, gammas, kept, affinity = ila_oracle(g_s.tolist(), y_s.tolist(), g_t.tolist(), 3, 0.6,
                                                      remembered=remembered)
        assert loss.pseudo_labels.tolist() == labels and loss.affinity.tolist() == affinity
        assert torch.allclose(loss.ratio, torch.tensor(gammas, dtype=torch.float64))
        assert value.item() == pytest.approx(_msc_loop(f_s.tolist(), f_t.tolist(), affinity), rel=1e-9)
        value.backward()
        contrasted += value.item() > 0
        assert (f_s.grad.abs().sum() > 0) == (value.item() > 0)
        # the bank remembers the features that decided (2 per class; 4 kept: the last two batches)
        rows = [] if previous is None else list(zip(*previous))
        rows = (rows + list(zip(g_s.tolist(), y_s.tolist())))[-12:]
        previous = (tuple(r[0] for r in rows), tuple(r[1] for r in rows))
    assert contrasted >= 2


def test_mining_features_must_cover_the_same_samples():
    f_s, y_s, f_t = _batch(0)
    with pytest.raises(ValueError, match=r"mining_features must be \(6, D'\) source and \(7, D'\) target"):
        ILALoss(k=3)(f_s, y_s, f_t, mining_features=(f_s[:5], f_t))


def test_moving_average_follows_the_weights_and_copies_the_statistics():
    from ila_tllib.engine.moving_average import MovingAverageNetwork
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = MovingAverageNetwork(net, 0.9)
    start = [p.detach().clone() for p in net.parameters()]
    net(torch.randn(8, 3))                                    # moves the running statistics
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    average.update(net)
    for mine, before, now in zip(average.model.parameters(), start, net.parameters()):
        assert torch.allclose(mine, 0.9 * before + 0.1 * now)
        assert not mine.requires_grad
    for mine, theirs in zip(average.model.buffers(), net.buffers()):
        assert torch.equal(mine, theirs)
    average.restart_from(net)
    assert all(torch.equal(a, b) for a, b in zip(average.model.parameters(), net.parameters()))
    with pytest.raises(ValueError, match=r"decay must lie in \[0, 1\)"):
        MovingAverageNetwork(net, 1.0)
