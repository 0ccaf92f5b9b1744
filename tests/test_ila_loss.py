"""ILALoss and its parts against the plain-loop oracle of Eq. 4-7 (tests/ila_oracle.py)."""
import math
import re

import numpy as np
import pytest
import torch

import ila_tllib
from ila_tllib import (AffinityTripletLoss, ClassifierPseudoLabeller, ConsensusPseudoLabeller, ILALoss,
                       KNNPseudoLabeller, MultiSampleContrastiveLoss, get_metric_loss, knn_vote, similarity_ratio)
from ila_oracle import cosine_phi, ila_oracle, ila_oracle_gradient


def make_batch(seed, n_classes, per_class, n_t, d=6, balanced=True, spread=1.0):
    g = torch.Generator().manual_seed(seed)
    if balanced:
        y_s = torch.arange(n_classes).repeat(per_class)
    else:  # class c has between 1 and per_class + 2 samples
        y_s = torch.cat([torch.full((int(torch.randint(1, per_class + 3, (1,), generator=g)),), c)
                         for c in range(n_classes)])
    centers = torch.randn(n_classes, d, generator=g, dtype=torch.float64) * 2
    f_s = centers[y_s] + spread * torch.randn(len(y_s), d, generator=g, dtype=torch.float64)
    y_t = torch.randint(0, n_classes, (n_t,), generator=g)
    f_t = centers[y_t] + 1.5 * spread * torch.randn(n_t, d, generator=g, dtype=torch.float64)
    return f_s, y_s, f_t


def check_against_oracle(f_s, y_s, f_t, k, mu, m=None, temperature=1.0, ratio_terms=None):
    ila = ILALoss(k=k, mu=mu, m=m, temperature=temperature, ratio_terms=ratio_terms)
    loss = ila(f_s, y_s, f_t)
    ref_loss, labels, gammas, kept, affinity = ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(),
                                                          k, mu, m, temperature, matched=ratio_terms == "matched")
    assert ila.pseudo_labels.tolist() == labels
    torch.testing.assert_close(ila.ratio, torch.tensor(gammas, dtype=torch.float64))
    assert set(ila.kept.nonzero().flatten().tolist()) == kept
    assert ila.affinity.tolist() == affinity
    assert loss.item() == pytest.approx(ref_loss, rel=1e-9, abs=1e-12)
    return ila, loss


@pytest.mark.parametrize("mu", [0.33, 0.67, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_balanced_source_matches_oracle(seed, mu):
    f_s, y_s, f_t = make_batch(seed, n_classes=4, per_class=3, n_t=10)
    check_against_oracle(f_s, y_s, f_t, k=3, mu=mu)
    check_against_oracle(f_s, y_s, f_t, k=3, mu=mu, temperature=0.5)


@pytest.mark.parametrize("seed", range(4))
def test_unbalanced_source_matches_oracle(seed):
    f_s, y_s, f_t = make_batch(seed, n_classes=5, per_class=3, n_t=9, balanced=False, spread=2.0)
    check_against_oracle(f_s, y_s, f_t, k=5, mu=0.67)
    check_against_oracle(f_s, y_s, f_t, k=2, mu=0.5, m=2, temperature=0.5)


@pytest.mark.parametrize("seed", range(4))
def test_matched_ratio_terms_match_oracle_on_unbalanced_sources(seed):
    f_s, y_s, f_t = make_batch(seed, n_classes=5, per_class=3, n_t=9, balanced=False, spread=2.0)
    ila, _ = check_against_oracle(f_s, y_s, f_t, k=3, mu=0.67, ratio_terms="matched")
    top_m, _ = check_against_oracle(f_s, y_s, f_t, k=3, mu=0.67)
    # the classes have 1 to 5 rows: a target of a class with fewer rows than the largest sums fewer terms
    counts = torch.bincount(y_s)[ila.pseudo_labels]
    fewer = counts < counts.max()
    assert fewer.any() and not torch.allclose(ila.ratio[fewer], top_m.ratio[fewer])


@pytest.mark.parametrize("seed", range(3))
def test_matched_ratio_terms_are_eq7_on_a_balanced_batch(seed):
    f_s, y_s, f_t = make_batch(seed, n_classes=4, per_class=3, n_t=10)
    matched, paper = ILALoss(k=3, mu=0.67, ratio_terms="matched"), ILALoss(k=3, mu=0.67)   # paper: fused path
    torch.testing.assert_close(matched(f_s, y_s, f_t), paper(f_s, y_s, f_t))
    torch.testing.assert_close(matched.ratio, paper.ratio)
    assert torch.equal(matched.kept, paper.kept)


@pytest.mark.parametrize("seed", range(3))
def test_k_larger_than_a_class_matches_oracle(seed):
    f_s, y_s, f_t = make_batch(seed, n_classes=3, per_class=2, n_t=7, spread=3.0)
    check_against_oracle(f_s, y_s, f_t, k=5, mu=1.0)


def test_knn_vote_ties_go_to_smallest_label():
    sim = torch.tensor([[0.9, 0.8, 0.1, 0.2, 0.0],
                        [0.7, 0.2, 0.9, 0.8, 0.6]])
    y_s = torch.tensor([2, 1, 3, 0, 3])
    assert knn_vote(sim, y_s, k=2).tolist() == [1, 0]   # {2, 1} and {3, 0}: ties
    assert knn_vote(sim, y_s, k=3).tolist() == [0, 0]   # {2, 1, 0} and {3, 0, 2}: 3-way ties
    assert knn_vote(sim, y_s, k=4).tolist() == [0, 3]   # {2, 1, 0, 3}: 4-way tie; {3, 0, 2, 3}: 3 wins
    assert knn_vote(sim, y_s, k=5).tolist() == [3, 3]   # every source votes: label 3 has two


@pytest.mark.parametrize("seed", range(6))
def test_random_ties_in_the_vote_match_oracle(seed):
    # many classes and an even k make tied votes frequent
    f_s, y_s, f_t = make_batch(seed, n_classes=6, per_class=2, n_t=12, spread=4.0)
    check_against_oracle(f_s, y_s, f_t, k=4, mu=0.67)


def test_every_target_rejected_gives_zero_connected_to_graph():
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=2, n_t=1)
    f_s.requires_grad_(), f_t.requires_grad_()
    ila, loss = check_against_oracle(f_s, y_s, f_t, k=1, mu=0.33)   # round(0.33) = 0 kept
    assert not ila.kept.any() and loss.item() == 0.0
    loss.backward()
    assert torch.equal(f_s.grad, torch.zeros_like(f_s)) and torch.isfinite(f_t.grad).all()


def test_one_class_only_gives_zero_not_nan():
    f_s, _, f_t = make_batch(1, n_classes=1, per_class=5, n_t=4)
    y_s = torch.zeros(5, dtype=torch.long)
    f_s.requires_grad_()
    ila, loss = check_against_oracle(f_s, y_s, f_t, k=3, mu=1.0)
    assert torch.isinf(ila.ratio).all() and loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(f_s.grad).all()


def test_duplicated_features_stay_finite():
    f = torch.randn(4, 3, dtype=torch.float64)
    f_s = torch.cat([f, f]).requires_grad_()
    f_t = f.clone().requires_grad_()
    y_s = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    loss = ILALoss(k=3, mu=1.0)(f_s, y_s, f_t)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f_s.grad).all() and torch.isfinite(f_t.grad).all()


def test_hand_computed_four_by_four():
    # 1-D features. Sources 0, 1 (label 0) and 3, 4 (label 1); targets 0.5, 3.75, 1.5, 2.25; k = 1, mu = 0.75.
    # phi = 1 / (1 + |s - t|); per target (phi to s = 0, 1, 3, 4) -> nearest label, ratio with m = 2:
    #   t=0.5 : 2/3, 2/3, 2/7, 2/9     -> 0, (4/3) / (32/63)        = 21/8
    #   t=3.75: 4/19, 4/15, 4/7, 4/5   -> 1, (48/35) / (136/285)    = 13680/4760
    #   t=1.5 : 2/5, 2/3, 2/5, 2/7     -> 0, (16/15) / (24/35)      = 14/9
    #   t=2.25: 4/13, 4/9, 4/7, 4/11   -> 1, (72/77) / (88/117)     = 8424/6776
    # round(0.75 * 4) = 3 kept: t=3.75, 0.5, 1.5 (t=2.25 is dropped).
    # Sources of label 0 have positives {t0.5, t1.5} and negative {t3.75}; label 1 the reverse.
    e = math.exp

    def row(pos, neg):
        return -math.log(sum(map(e, pos)) / (sum(map(e, pos)) + sum(map(e, neg))))

    expected = (row([2 / 3, 2 / 5], [4 / 19]) + row([2 / 3, 2 / 3], [4 / 15])
                + row([4 / 7], [2 / 7, 2 / 5]) + row([4 / 5], [2 / 9, 2 / 7])) / 4
    # the rows are 0.306648, 0.289051, 0.953177, 0.769678: their mean 0.579639
    f_s = torch.tensor([[0.], [1.], [3.], [4.]], dtype=torch.float64)
    f_t = torch.tensor([[0.5], [3.75], [1.5], [2.25]], dtype=torch.float64)
    ila = ILALoss(k=1, mu=0.75)
    loss = ila(f_s, torch.tensor([0, 0, 1, 1]), f_t)
    assert ila.pseudo_labels.tolist() == [0, 1, 0, 1]
    assert ila.kept.tolist() == [True, True, True, False]
    assert ila.ratio.tolist() == pytest.approx([21 / 8, 13680 / 4760, 14 / 9, 8424 / 6776], rel=1e-12)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("temperature, mu", [(1.0, 0.8), (0.5, 0.4)])
def test_gradcheck_float64(temperature, mu):
    f_s, y_s, f_t = make_batch(3, n_classes=3, per_class=2, n_t=5, d=3)
    ila = ILALoss(k=3, mu=mu, temperature=temperature)
    ila(f_s, y_s, f_t)
    assert ila.num_anchors > 0      # the case really contrasts something
    if mu < 0.5:                    # ... and leaves some sources out (their gradient must be 0, not NaN)
        assert ila.num_anchors < len(y_s)
    assert torch.autograd.gradcheck(lambda a, b: ila(a, y_s, b),
                                    (f_s.requires_grad_(), f_t.requires_grad_()), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("seed, temperature, mu", [(0, 1.0, 0.67), (1, 0.5, 0.33), (2, 1.0, 1.0), (3, 2.0, 0.67)])
def test_gradient_matches_loop_oracle(seed, temperature, mu):
    # the analytic derivative of Eq. 4-6, written as loops, against backward through ILALoss
    f_s, y_s, f_t = make_batch(seed, n_classes=4, per_class=3, n_t=10, balanced=seed % 2 == 0)
    f_s.requires_grad_(), f_t.requires_grad_()
    ila = ILALoss(k=3, mu=mu, temperature=temperature)
    loss = ila(f_s, y_s, f_t)
    assert 0 < ila.num_anchors
    grad_s, grad_t = torch.autograd.grad(loss, (f_s, f_t))
    ref_loss, ref_s, ref_t = ila_oracle_gradient(f_s.tolist(), y_s.tolist(), f_t.tolist(), 3, mu,
                                                 temperature=temperature)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-9)
    torch.testing.assert_close(grad_s, torch.tensor(ref_s, dtype=torch.float64), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grad_t, torch.tensor(ref_t, dtype=torch.float64), rtol=1e-9, atol=1e-12)
    assert grad_t.abs().sum() > 0 and grad_s.abs().sum() > 0


def test_similarity_gradient_matches_autograd_through_cdist():
    # the hand-written backward of φ against autograd of 1 / (1 + cdist), at a size where cdist uses mm
    g = torch.Generator().manual_seed(0)
    a = torch.randn(40, 16, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(30, 16, generator=g, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(40, 30, generator=g, dtype=torch.float64)
    ours = torch.autograd.grad((ila_tllib.InverseEuclideanSimilarity()(a, b) * weights).sum(), (a, b))
    reference = torch.autograd.grad((1 / (1 + torch.cdist(a, b)) * weights).sum(), (a, b))
    for x, y in zip(ours, reference):
        torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-12)


def test_similarity_in_half_precision_and_under_autocast_is_the_float64_distance():
    # features of 256 values around 10: ‖a‖² + ‖b‖² passes float16's largest number (65504)
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(n, 256, generator=g) * 20 for n in (12, 10))
    reference = 1 / (1 + torch.cdist(a.half().double(), b.half().double()))
    half_a, half_b = a.half().requires_grad_(), b.half().requires_grad_()
    phi = ila_tllib.InverseEuclideanSimilarity()(half_a, half_b)
    torch.testing.assert_close(phi.double(), reference, rtol=1e-5, atol=0)
    phi.sum().backward()
    assert half_a.grad.dtype == torch.float16 and torch.isfinite(half_a.grad).all()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        phi = ila_tllib.InverseEuclideanSimilarity()(a, b)
    torch.testing.assert_close(phi.double(), 1 / (1 + torch.cdist(a.double(), b.double())), rtol=1e-5, atol=0)


def test_gradient_reaches_both_domains_and_not_through_mining():
    f_s, y_s, f_t = make_batch(5, n_classes=3, per_class=3, n_t=8)
    f_s.requires_grad_(), f_t.requires_grad_()
    ila = ILALoss(k=3, mu=1.0)
    ila(f_s, y_s, f_t).backward()
    assert f_s.grad.abs().sum() > 0 and f_t.grad.abs().sum() > 0
    for t in (ila.pseudo_labels, ila.ratio, ila.kept, ila.affinity):
        assert not t.requires_grad


def test_classifier_pseudo_labels_keep_most_confident():
    f_s, y_s, f_t = make_batch(2, n_classes=3, per_class=2, n_t=6)
    logits = torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ila = ILALoss(mu=0.5, pseudo_labeller=ClassifierPseudoLabeller())
    loss = ila(f_s, y_s, f_t, logits_t=logits)
    prob = logits.softmax(1)
    assert ila.pseudo_labels.tolist() == prob.argmax(1).tolist()
    top3 = set(prob.max(1).values.argsort(descending=True)[:3].tolist())
    assert set(ila.kept.nonzero().flatten().tolist()) == top3
    # the loss is MSC on the same phi with that affinity: rebuild it by hand
    phi = 1 / (1 + torch.cdist(f_s, f_t))
    labels = prob.argmax(1)
    values = []
    for i in range(6):
        pos = [phi[i, j].item() for j in top3 if y_s[i] == labels[j]]
        neg = [phi[i, j].item() for j in top3 if y_s[i] != labels[j]]
        if pos and neg:
            values.append(-math.log(sum(map(math.exp, pos)) / sum(map(math.exp, pos + neg))))
    assert loss.item() == pytest.approx(sum(values) / len(values) if values else 0.0, rel=1e-9)
    with pytest.raises(ValueError, match="logits_t"):
        ila(f_s, y_s, f_t)


def test_triplet_swap_uses_hardest_pairs():
    f_s, y_s, f_t = make_batch(4, n_classes=3, per_class=3, n_t=9)
    msc_run = ILALoss(k=3, mu=0.67)
    msc_run(f_s, y_s, f_t)
    tri = ILALoss(k=3, mu=0.67, metric_loss=AffinityTripletLoss(margin=0.2))
    loss = tri(f_s, y_s, f_t)
    assert torch.equal(tri.affinity, msc_run.affinity)       # only the loss part changed
    phi = (1 / (1 + torch.cdist(f_s, f_t))).tolist()
    a = ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), 3, 0.67)[4]
    per = []
    for i in range(len(phi)):
        pos = [phi[i][j] for j in range(9) if a[i][j] == 1]
        neg = [phi[i][j] for j in range(9) if a[i][j] == -1]
        if pos and neg:
            per.append(max(0.0, max(neg) - min(pos) + 0.2))
    assert per and loss.item() == pytest.approx(sum(per) / len(per), rel=1e-9)


def test_msc_reduction_none_and_empty():
    sim = torch.rand(3, 4, requires_grad=True)
    aff = torch.tensor([[1., -1., 0., 1.], [1., 1., 0., 0.], [0., 0., 0., 0.]])
    per = MultiSampleContrastiveLoss(reduction="none")(sim, aff)
    assert per.shape == (1,)
    s = sim.detach()[0]
    e0, e1, e3 = (math.exp(s[j].item()) for j in (0, 1, 3))
    assert per.item() == pytest.approx(-math.log((e0 + e3) / (e0 + e1 + e3)), rel=1e-6)
    empty = MultiSampleContrastiveLoss()(sim, torch.zeros(3, 4))
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(sim.grad, torch.zeros(3, 4))


@pytest.mark.parametrize("name, moved", [("msc", (1, -1)), ("msc-push", (-1,)), ("msc-pull", (1,))])
def test_msc_moving_one_side_of_the_pairs(name, moved):
    # the value is MSC's whatever moves; dL/dphi_ij from the derivative, in loops:
    # (p_all - p_pos) / (T |I|) on positives, p_all / (T |I|) on negatives, and 0 on the pairs held
    torch.manual_seed(3)
    sim = torch.rand(4, 5, dtype=torch.float64, requires_grad=True)
    aff = torch.tensor([[1., -1., 0., 1., -1.], [1., 1., 0., 0., 0.], [-1., 1., -1., 0., 1.], [0.] * 5],
                       dtype=torch.float64)
    temperature = 0.5
    loss = get_metric_loss(name, temperature=temperature)(sim, aff)
    loss.backward()
    s, a = sim.detach().tolist(), aff.tolist()
    rows = [i for i in range(4) if 1 in a[i] and -1 in a[i]]
    values, grad = [], [[0.0] * 5 for _ in range(4)]
    for i in rows:
        e = [math.exp(s[i][j] / temperature) for j in range(5)]
        pos = sum(e[j] for j in range(5) if a[i][j] == 1)
        both = pos + sum(e[j] for j in range(5) if a[i][j] == -1)
        values.append(-math.log(pos / both))
        for j in range(5):
            if a[i][j] in moved:
                grad[i][j] = (e[j] / both - (e[j] / pos if a[i][j] == 1 else 0.0)) / (temperature * len(rows))
    assert loss.item() == pytest.approx(sum(values) / len(values), rel=1e-12)
    assert sim.grad.tolist() == [pytest.approx(row, rel=1e-12, abs=1e-15) for row in grad]


@pytest.mark.parametrize("metric_loss", ["msc", "msc-push", "msc-pull", "triplet"])
def test_empty_target_batch_gives_zero_connected_to_graph(metric_loss):
    # (the triplet loss took the hardest pair of no target: an IndexError)
    f_s, y_s, _ = make_batch(2, n_classes=3, per_class=2, n_t=1)
    f_s.requires_grad_()
    ila = ILALoss(k=3, mu=0.67, metric_loss=metric_loss)
    loss = ila(f_s, y_s, torch.zeros(0, f_s.shape[1], dtype=f_s.dtype))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(f_s.grad, torch.zeros_like(f_s)) and ila.num_anchors == 0


@pytest.mark.parametrize("mu, n, kept", [(0.29, 50, 15), (0.57, 50, 29), (0.45, 10, 5), (0.67, 124, 83),
                                          (0.67, 32, 21), (0.33, 3, 1), (0.75, 2, 2), (0.1, 4, 0)])
def test_kept_count_rounds_half_up_for_mu_as_written(mu, n, kept):
    # 0.29 * 50 and 0.57 * 50 land just below .5 in floating point; the oracle counts in exact fractions
    score = torch.arange(n, dtype=torch.float64)
    assert ila_tllib.keep_top_fraction(score, mu).sum().item() == kept
    f_s, y_s, f_t = make_batch(0, n_classes=2, per_class=2, n_t=n)
    assert len(ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), 1, mu)[3]) == kept


def test_similarity_ratio_with_fewer_like_than_m():
    sim = torch.tensor([[0.9, 0.5, 0.4, 0.3]])
    y_s = torch.tensor([1, 0, 0, 0])
    # like = {0.9} (one, fewer than m = 2), unlike top-2 = {0.5, 0.4}
    assert similarity_ratio(sim, y_s, torch.tensor([1]), m=2).item() == pytest.approx(0.9 / 0.9)
    assert similarity_ratio(sim, y_s, torch.tensor([0]), m=2).item() == pytest.approx(0.9 / 0.9)
    assert similarity_ratio(sim, y_s, torch.tensor([0]), m=3).item() == pytest.approx(1.2 / 0.9)
    # matched: as many unlike as like terms; like = {0.9} takes the one most similar unlike, 0.5
    assert similarity_ratio(sim, y_s, torch.tensor([1]), m=2, matched=True).item() == pytest.approx(0.9 / 0.5)
    assert similarity_ratio(sim, y_s, torch.tensor([0]), m=2, matched=True).item() == pytest.approx(0.9 / 0.9)
    assert similarity_ratio(sim, y_s, torch.tensor([2]), m=2, matched=True).item() == 0.0   # no like source


def test_cosine_similarity_option():
    a, b = torch.randn(3, 4), torch.randn(5, 4)
    sim = ila_tllib.get_similarity("cosine")(a, b)
    ref = torch.tensor([[(1 + torch.nn.functional.cosine_similarity(a[i], b[j], dim=0).item()) / 2 for j in range(5)]
                        for i in range(3)])
    zero = ila_tllib.get_similarity("cosine")(torch.zeros(1, 4), b)
    assert torch.equal(zero, torch.full((1, 5), 0.5))
    torch.testing.assert_close(sim, ref)


def test_centered_cosine_is_the_angle_about_each_sets_mean():
    a, b = torch.randn(3, 4, dtype=torch.float64) + 5.0, torch.randn(5, 4, dtype=torch.float64) - 2.0
    sim = ila_tllib.get_similarity("centered_cosine")(a, b)
    mean_a = [sum(a[i, d].item() for i in range(3)) / 3 for d in range(4)]
    mean_b = [sum(b[j, d].item() for j in range(5)) / 5 for d in range(4)]
    ref = [[cosine_phi([a[i, d].item() - mean_a[d] for d in range(4)], [b[j, d].item() - mean_b[d] for d in range(4)])
            for j in range(5)] for i in range(3)]
    torch.testing.assert_close(sim, torch.tensor(ref, dtype=torch.float64))
    # a shift of either set as a whole changes nothing; the plain angle moves
    shifted = ila_tllib.get_similarity("centered_cosine")(a + torch.tensor([3.0, -1.0, 0.5, 2.0], dtype=a.dtype), b - 4.0)
    torch.testing.assert_close(shifted, sim)
    assert not torch.allclose(ila_tllib.get_similarity("cosine")(a + 3.0, b), ila_tllib.get_similarity("cosine")(a, b))
    # one row centres to zero: similarity 1/2 to everything
    assert torch.equal(ila_tllib.get_similarity("centered_cosine")(a[:1], b), torch.full((1, 5), 0.5, dtype=a.dtype))


@pytest.mark.parametrize("seed", range(3))
def test_centered_mining_decides_as_the_oracle_on_centred_features(seed):
    f_s, y_s, f_t = make_batch(seed, 4, 3, 10, spread=0.8)
    f_s, f_t = f_s + 2.0, f_t - 1.0           # domains far apart: the plain angle and the centred one disagree
    ila = ILALoss(k=3, mu=0.7, similarity="cosine", mining_similarity="centered_cosine")
    ila(f_s, y_s, f_t)
    centred_s, centred_t = (f - f.mean(0, keepdim=True) for f in (f_s, f_t))
    _, labels, _, kept, affinity = ila_oracle(centred_s.tolist(), y_s.tolist(), centred_t.tolist(), 3, 0.7,
                                              decide_phi=cosine_phi)
    assert ila.pseudo_labels.tolist() == labels and set(ila.kept.nonzero().flatten().tolist()) == kept
    assert ila.affinity.tolist() == affinity
    plain = ILALoss(k=3, mu=0.7, similarity="cosine")
    plain(f_s, y_s, f_t)
    assert not torch.equal(plain.affinity, ila.affinity)


@pytest.mark.parametrize("seed", range(3))
def test_mining_similarity_decides_and_the_loss_keeps_its_own(seed):
    # sources of random lengths, targets shrunk towards the origin: the angle and the distance disagree
    f_s, y_s, f_t = make_batch(seed, 4, 3, 10, spread=0.8)
    order = torch.randperm(len(f_s), generator=torch.Generator().manual_seed(seed))
    f_s = f_s * torch.linspace(0.3, 3.0, len(f_s), dtype=f_s.dtype)[order][:, None]
    f_t = f_t * 0.3
    ila = ILALoss(k=3, mu=0.7, mining_similarity="cosine")
    loss = ila(f_s, y_s, f_t)
    ref_loss, labels, _, kept, affinity = ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), 3, 0.7,
                                                     decide_phi=cosine_phi)
    assert ila.pseudo_labels.tolist() == labels and set(ila.kept.nonzero().flatten().tolist()) == kept
    assert ila.affinity.tolist() == affinity
    assert loss.item() == pytest.approx(ref_loss, rel=1e-9, abs=1e-12)
    # the same decisions as the cosine loss, another value than it; other decisions than the paper's
    everywhere = ILALoss(k=3, mu=0.7, similarity="cosine")
    other = everywhere(f_s, y_s, f_t)
    assert torch.equal(everywhere.affinity, ila.affinity) and other.item() != pytest.approx(loss.item())
    assert other.item() == pytest.approx(ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), 3, 0.7,
                                                    decide_phi=cosine_phi, contrast_phi=cosine_phi)[0],
                                         rel=1e-9, abs=1e-12)
    paper = ILALoss(k=3, mu=0.7)
    paper(f_s, y_s, f_t)
    assert not torch.equal(paper.affinity, ila.affinity)
    # mining features with the mining similarity: the decisions follow both
    g_s, g_t = f_s.flip(1), f_t.flip(1)
    ila(f_s, y_s, f_t, mining_features=(g_s, g_t))
    assert ila_oracle(g_s.tolist(), y_s.tolist(), g_t.tolist(), 3, 0.7, decide_phi=cosine_phi)[1] == \
        ila.pseudo_labels.tolist()


@pytest.mark.parametrize("kwargs, message", [
    ({"temperature": float("nan")}, "temperature must be a finite number > 0, got nan"),
    ({"temperature": float("inf")}, "temperature must be a finite number > 0, got inf"),
    ({"k": 2.5}, "k must be a whole number, got 2.5"), ({"k": True}, "k must be a whole number, got True"),
    ({"m": 1.5}, "m must be a whole number, got 1.5")])
def test_settings_that_are_not_numbers_of_their_kind_are_refused_when_the_loss_is_built(kwargs, message):
    # a NaN temperature gave 0 on the fused path and NaN on the other; k 2.5 failed at the first batch, and
    # k True ran as k 1
    with pytest.raises(ValueError, match=re.escape(message)):
        ILALoss(**kwargs)


def test_whole_numbers_of_other_types_are_taken_as_ints():
    labeller = KNNPseudoLabeller(np.int64(3), m=torch.tensor(2))
    assert (labeller.k, labeller.m) == (3, 2) and type(labeller.k) is int and type(labeller.m) is int


@pytest.mark.parametrize("kwargs, message", [({"mu": 0.0}, "mu"), ({"mu": 1.5}, "mu"), ({"k": 0}, "k"),
                                             ({"temperature": 0.0}, "temperature"),
                                             ({"similarity": "l1"}, "similarity"), ({"ratio_terms": "mean"}, "ratio terms")])
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ILALoss(**kwargs)


@pytest.mark.parametrize("kwargs, dropped", [
    ({"pseudo_labeller": "classifier", "k": 3}, "'classifier' takes no k:"),
    ({"pseudo_labeller": "classifier", "m": 2, "ratio_terms": "matched"}, "'classifier' takes no m and no ratio_terms"),
    ({"metric_loss": "triplet", "temperature": 0.1}, "'triplet' takes no temperature"),
    ({"pseudo_labeller": KNNPseudoLabeller(3), "k": 3},
     "k is a setting of the pseudo-labeller built by name; with a pseudo-labeller module, give it to that module"),
    ({"pseudo_labeller": KNNPseudoLabeller(3), "k": 3, "m": 2}, "k and m are settings of the pseudo-labeller"),
    ({"metric_loss": MultiSampleContrastiveLoss(), "temperature": 0.5}, "give it to that module")])
def test_a_setting_the_part_does_not_take_is_refused(kwargs, dropped):
    # a setting that would be silently dropped: an ablation would believe it took effect
    with pytest.raises(ValueError, match=re.escape(dropped)):
        ILALoss(**kwargs)


def test_the_part_factories_refuse_a_setting_as_the_loss_does():
    from ila_tllib import get_pseudo_labeller
    with pytest.raises(ValueError, match=re.escape("the pseudo-labeller 'classifier' takes no k and no m:")):
        get_pseudo_labeller("classifier", k=3, m=2)
    with pytest.raises(ValueError, match=re.escape("the metric loss 'triplet' takes no temperature:")):
        get_metric_loss("triplet", temperature=0.5)
    # settings left out keep the constructors' defaults; given ones are set
    assert get_pseudo_labeller("knn").k == KNNPseudoLabeller().k and get_pseudo_labeller("knn", k=3).k == 3
    assert get_metric_loss("msc").temperature == MultiSampleContrastiveLoss().temperature
    assert get_metric_loss("msc", temperature=0.5).temperature == 0.5


class NegativeDistance(torch.nn.Module):
    """"Larger means more alike", but negative: Γ's ratio of sums would rank the targets backwards."""

    def forward(self, a, b):
        return -torch.cdist(a, b)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("labeller", ["knn", "consensus"])
def test_a_similarity_of_ones_own_that_goes_negative_is_refused_where_the_ratio_test_reads_it(fused, labeller):
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=4, n_t=8)
    logits_t = torch.randn(8, 3)
    with pytest.raises(ValueError, match=r"the similarity NegativeDistance gives negative values .* ratio test"):
        ILALoss(k=3, similarity=NegativeDistance(), pseudo_labeller=labeller, fused=fused)(f_s, y_s, f_t,
                                                                                          logits_t=logits_t)
    # the classifier's labels read no ratio: MSC takes any real similarity
    loss = ILALoss(similarity=NegativeDistance(), pseudo_labeller="classifier")(f_s, y_s, f_t, logits_t=logits_t)
    assert torch.isfinite(loss)
    # a positive one of one's own is taken, and decides as the built-in one with its values
    own = ILALoss(k=3, similarity=type("Inverse", (torch.nn.Module,), {
        "forward": lambda self, a, b: 1 / (1 + torch.cdist(a, b))})())
    own(f_s, y_s, f_t)
    assert own.pseudo_labels.tolist() == ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), 3, 0.67)[1]


def test_a_similarity_added_to_the_table_is_checked_as_one_of_ones_own(monkeypatch):
    # is_builtin read the table, so a class registered there passed as one of the three built-in ones
    monkeypatch.setitem(ila_tllib.SIMILARITIES, "negative_distance", NegativeDistance)
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=4, n_t=8)
    with pytest.raises(ValueError, match=r"the similarity NegativeDistance gives negative values"):
        ILALoss(k=3, similarity="negative_distance")(f_s, y_s, f_t)


@pytest.mark.parametrize("fused", [True, False])
def test_a_label_outside_the_classes_is_named_alike_on_both_paths(fused):
    # the fused path named a num_classes it had derived, which the caller never gave
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=2, n_t=4)
    with pytest.raises(ValueError, match=re.escape("y_s holds labels in [-1, 1], outside [0, num_classes - 1] "
                                                   "(num_classes=None)")):
        ILALoss(k=3, fused=fused)(f_s, y_s - 1, f_t)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int8, torch.int16, torch.int32])
def test_the_parts_used_alone_take_labels_of_any_integer_type(dtype):
    # (the vote's scatter took int64 only: the parts failed where ILALoss, which converts, did not)
    from ila_tllib import AffinityMiner
    f_s, y_s, f_t = make_batch(4, n_classes=3, per_class=3, n_t=6)
    sim = ila_tllib.InverseEuclideanSimilarity()(f_t, f_s)
    assert torch.equal(knn_vote(sim, y_s.to(dtype), 3), knn_vote(sim, y_s, 3))
    logits_t = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    for labeller in (KNNPseudoLabeller(3), ConsensusPseudoLabeller(3)):
        narrow, wide = labeller(sim, y_s.to(dtype), logits_t), labeller(sim, y_s, logits_t)
        assert torch.equal(narrow.labels, wide.labels) and torch.equal(narrow.score, wide.score)
    miner = AffinityMiner(KNNPseudoLabeller(3), 0.5)
    mined, plain = miner(sim, y_s.to(dtype)), miner(sim, y_s)
    assert torch.equal(mined.affinity, plain.affinity) and torch.equal(mined.kept, plain.kept)


def test_k_larger_than_source_batch_is_a_clear_error():
    f_s, y_s, f_t = make_batch(0, n_classes=2, per_class=2, n_t=3)
    with pytest.raises(ValueError, match=r"k=5 .*source batch holds 4"):
        ILALoss(k=5)(f_s, y_s, f_t)
    for fused in (True, False):       # (it read "k=5 must lie in [1, 0]")
        with pytest.raises(ValueError, match=r"the source batch is empty"):
            ILALoss(k=5, fused=fused)(f_s[:0], y_s[:0], f_t)


def test_library_does_not_import_tllib():
    import subprocess
    import sys
    code = "import sys, ila_tllib; ila_tllib.ILALoss(k=3)(__import__('torch').randn(4, 2), " \
           "__import__('torch').tensor([0, 1, 0, 1]), __import__('torch').randn(3, 2)); " \
           "print(any(m == 'tllib' or m.startswith('tllib.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_consensus_keeps_only_targets_whose_knn_label_the_classifier_shares():
    torch.manual_seed(4)
    f_s, y_s, f_t = torch.randn(12, 3, dtype=torch.float64), torch.arange(12) % 3, torch.randn(10, 3, dtype=torch.float64)
    _, labels, gammas, kept_plain, _ = ila_oracle(f_s.tolist(), y_s.tolist(), f_t.tolist(), k=3, mu=0.8)
    logits_t = torch.randn(10, 3, dtype=torch.float64)
    agree = [labels[j] == int(logits_t[j].argmax()) for j in range(10)]
    ila = ILALoss(k=3, mu=0.8, pseudo_labeller="consensus")
    loss = ila(f_s, y_s, f_t, logits_t=logits_t)
    # up to round(0.8 n) = 8 targets, highest Γ first, among those where the classifier agrees
    agreeing = sorted((j for j in range(10) if agree[j]), key=lambda j: -gammas[j])
    assert 0 < len(agreeing) < 10
    assert set(torch.nonzero(ila.kept).flatten().tolist()) == set(agreeing[:8])
    assert ila.pseudo_labels.tolist() == labels
    assert all(ila.ratio[j] == float("-inf") for j in range(10) if not agree[j])
    affinity = ila.affinity
    assert (affinity[:, ~ila.kept] == 0).all()
    expected = oracle_loss_on_columns(f_s, y_s, f_t, labels, ila.kept)
    assert loss.item() == pytest.approx(expected, rel=1e-9)


def oracle_loss_on_columns(f_s, y_s, f_t, labels, kept):
    """Eq. 4-5 by loops for a given set of kept targets and their pseudo-labels."""
    from ila_oracle import phi
    per_source = []
    for i in range(len(f_s)):
        pos = [j for j in range(len(f_t)) if kept[j] and labels[j] == int(y_s[i])]
        neg = [j for j in range(len(f_t)) if kept[j] and labels[j] != int(y_s[i])]
        if pos and neg:
            num = sum(math.exp(phi(f_s[i].tolist(), f_t[j].tolist())) for j in pos)
            den = num + sum(math.exp(phi(f_s[i].tolist(), f_t[j].tolist())) for j in neg)
            per_source.append(-math.log(num / den))
    return sum(per_source) / len(per_source) if per_source else 0.0


def _cosine_oracle(a, b, centred):
    """φ of the cosine similarities in float64, row by row from the definition."""
    a, b = a.double(), b.double()
    if centred:
        a, b = a - a.mean(0), b - b.mean(0)
    return torch.tensor([[0.5 * (1 + float(x @ y) / (float(x.norm()) * float(y.norm()))) for y in b] for x in a],
                        dtype=torch.float64)


@pytest.mark.parametrize("name, centred", [("cosine", False), ("centered_cosine", True)])
def test_cosine_similarities_in_half_precision_and_under_autocast_are_float32_or_wider(name, centred):
    # half precision's three digits would decide the vote and Γ: computed in at least float32, as the distance
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(9, 16, generator=g), torch.randn(7, 16, generator=g)
    similarity = ila_tllib.get_similarity(name)
    for dtype in (torch.float16, torch.bfloat16):
        half_a, half_b = a.to(dtype).requires_grad_(), b.to(dtype)
        phi = similarity(half_a, half_b)
        assert phi.dtype == torch.float32
        torch.testing.assert_close(phi.double(), _cosine_oracle(half_a.detach(), half_b, centred), rtol=1e-6, atol=1e-6)
        phi.sum().backward()
        assert half_a.grad.dtype == dtype
    with torch.autocast("cpu", dtype=torch.bfloat16):
        phi = similarity(a, b)
    assert phi.dtype == torch.float32
    torch.testing.assert_close(phi.double(), _cosine_oracle(a, b, centred), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("labeller", ["classifier", "consensus"])
@pytest.mark.parametrize("rows", [1, 7])
def test_target_logits_of_another_row_count_are_refused(labeller, rows):
    # one row broadcast over every target: the classifier labeller gave a loss of 0 and an affinity of one column
    f_s, y_s, f_t = make_batch(4, n_classes=3, per_class=3, n_t=8)
    kwargs = {"k": 3} if labeller == "consensus" else {}
    with pytest.raises(ValueError, match=r"logits_t must hold one row of class scores per target, shape \(8, C\), "
                                         rf"got \({rows}, 3\)"):
        ILALoss(pseudo_labeller=labeller, **kwargs)(f_s, y_s, f_t, logits_t=torch.randn(rows, 3), num_classes=3)


@pytest.mark.parametrize("fused", [True, False])
def test_source_labels_are_checked_alike_on_both_paths(fused):
    # the composable path took labels beyond num_classes silently, and crashed inside bincount or scatter on
    # negative or narrow-integer ones
    f_s, y_s, f_t = make_batch(4, n_classes=3, per_class=3, n_t=8)
    ila = ILALoss(k=3, fused=fused)
    with pytest.raises(ValueError, match=r"y_s holds labels in \[0, 2\], outside \[0, 1\] \(num_classes=2\)"):
        ila(f_s, y_s, f_t, num_classes=2)
    with pytest.raises(ValueError, match=r"y_s holds labels in \[-1, 1\], outside \[0, 2\]"):
        ila(f_s, y_s - 1, f_t, num_classes=3)
    with pytest.raises(ValueError, match=r"y_s must hold integer class labels, got torch.float32"):
        ila(f_s, y_s.float(), f_t, num_classes=3)
    expected = ila(f_s, y_s, f_t, num_classes=3)
    for dtype in (torch.int8, torch.int16, torch.int32):
        assert ila(f_s, y_s.to(dtype), f_t, num_classes=3).item() == expected.item()


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("similarity", ["inverse_euclidean", "cosine"])
def test_a_second_derivative_raises_instead_of_coming_out_wrong(fused, similarity):
    # the hand-written backwards returned gradients that a second differentiation took as constants: a
    # gradient penalty through the loss came out silently wrong (checked against autograd through cdist)
    torch.manual_seed(0)
    f_s = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    f_t = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y_s = torch.arange(3).repeat(2)
    loss = ILALoss(k=3, mu=1.0, similarity=similarity, fused=fused)
    with pytest.raises(RuntimeError, match="no second derivative"):
        torch.autograd.grad(loss(f_s, y_s, f_t), f_s, create_graph=True)
    first, = torch.autograd.grad(loss(f_s, y_s, f_t), f_s)       # the first derivative as before
    assert torch.isfinite(first).all() and first.abs().sum() > 0


def test_mining_features_and_logits_of_the_wrong_width_are_named():
    torch.manual_seed(0)
    f_s, f_t, y_s = torch.randn(6, 4), torch.randn(8, 4), torch.arange(3).repeat(2)
    with pytest.raises(ValueError, match="of one width D'"):
        ILALoss(k=3)(f_s, y_s, f_t, mining_features=(torch.randn(6, 7), torch.randn(8, 5)))
    # the bank keeps the deciding features; bank anchors contrast them with f_t, so widths must meet
    wide = (torch.randn(6, 7), torch.randn(8, 7))
    with pytest.raises(ValueError, match="mining_features of width 7 cannot meet f_t of width 4"):
        ILALoss(k=3, source_bank=2, bank_anchors=True)(f_s, y_s, f_t, num_classes=3, mining_features=wide)
    ILALoss(k=3, source_bank=2)(f_s, y_s, f_t, num_classes=3, mining_features=wide)     # without anchors: fine
    for labeller in ("classifier", "consensus"):
        with pytest.raises(ValueError, match="logits_t has 2 class scores per target, num_classes is 3"):
            ILALoss(pseudo_labeller=labeller)(f_s, y_s, f_t, logits_t=torch.randn(8, 2), num_classes=3)


def test_every_public_name_resolves_and_the_readme_tables_are_among_them():
    import ila_tllib.losses
    import ila_tllib.pseudo_labels
    import ila_tllib.similarity
    for name in ila_tllib.__all__:
        assert getattr(ila_tllib, name) is not None, name
    # the tables the README imports from the package (they feed the scripts' choices)
    from ila_tllib import METRIC_LOSSES, PSEUDO_LABELLERS, SIMILARITIES
    assert (SIMILARITIES, PSEUDO_LABELLERS, METRIC_LOSSES) == (
        ila_tllib.similarity.SIMILARITIES, ila_tllib.pseudo_labels.PSEUDO_LABELLERS, ila_tllib.losses.METRIC_LOSSES)


def test_parts_used_alone_name_a_matrix_in_the_other_orientation():
    # the miner takes targets by rows, the losses sources by rows: with equal batch sizes a transposed matrix
    # cannot be told apart; with unequal ones each part names the shapes (it was a broadcast error)
    from ila_tllib import AffinityMiner
    y_s = torch.arange(12) % 3
    with pytest.raises(ValueError, match=r"the miner takes similarity_ts of shape \(N_t, N_s\).*got \(12, 10\)"):
        AffinityMiner(KNNPseudoLabeller(3), 1.0)(torch.rand(12, 10), y_s)
    for loss in (MultiSampleContrastiveLoss(), AffinityTripletLoss()):
        with pytest.raises(ValueError, match=r"must both be \(N_s, N_t\).*got \(12, 10\) and \(10, 12\)"):
            loss(torch.rand(12, 10), torch.zeros(10, 12))


def test_the_source_bank_takes_int32_labels_as_int64_ones():
    from ila_tllib.memory import SourceFeatureBank
    f, y = torch.randn(7, 4), torch.tensor([2, 0, 2, 1, 2, 0, 2])
    banks = [SourceFeatureBank(2), SourceFeatureBank(2)]
    banks[0].push(f, y, 3)
    banks[1].push(f, y.int(), 3)
    (f0, y0), (f1, y1) = banks[0].entries(), banks[1].entries()
    # by hand: the last two rows of class 2 (rows 4 and 6), both of class 0, class 1's one
    assert torch.equal(f0, f1) and torch.equal(y0, y1)
    assert sorted(map(tuple, f0.tolist())) == sorted(map(tuple, f[[1, 5, 3, 4, 6]].tolist()))


def test_a_nan_score_ranks_last_and_a_whole_float_counts_as_a_class_count():
    # topk ranks NaN first: a labeller of one's own that scores NaN would have its worst targets kept
    kept = ila_tllib.keep_top_fraction(torch.tensor([3.0, float("nan"), 2.0, 0.0, float("inf")]), 0.6)
    assert kept.tolist() == [True, False, True, False, True]
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=2, n_t=5)
    losses = [ILALoss(k=3, fused=fused)(f_s, y_s, f_t, num_classes=classes).item()
              for fused in (True, False) for classes in (4, 4.0, torch.tensor(4))]
    assert losses == pytest.approx([losses[0]] * 6)
    with pytest.raises(ValueError, match=r"num_classes must be a whole number of classes, got 3.5"):
        ILALoss(k=3)(f_s, y_s, f_t, num_classes=3.5)


@pytest.mark.parametrize("labeller", [KNNPseudoLabeller(1), ConsensusPseudoLabeller(1)])
def test_a_knn_labeller_used_alone_names_source_labels_outside_the_classes(labeller):
    # with num_classes=3 a label 5 made the vote's classes 6 wide: a target could be labelled 5, silently
    sim, logits_t = torch.rand(3, 4), torch.randn(3, 3)
    with pytest.raises(ValueError, match=r"y_s holds labels in \[1, 5\], outside \[0, 2\] \(num_classes=3\)"):
        labeller(sim, torch.tensor([1, 2, 5, 1]), logits_t, num_classes=3)
    with pytest.raises(ValueError, match=r"y_s holds labels in \[-1, 2\], outside \[0, 2\]"):
        labeller(sim, torch.tensor([0, -1, 2, 1]), logits_t, num_classes=3)
    # labels within the classes: the vote is the plain one (source 3 is every target's nearest)
    sim[:, 3] = 2.0
    assert labeller(sim, torch.tensor([0, 1, 2, 1]), logits_t, num_classes=3).labels.tolist() == [1, 1, 1]
