"""The fused path of ILALoss (ila_tllib/fused.py): the same as the composable path, accurate in float32
against the float64 oracle, the tie rules, and when it is chosen."""
import math

import pytest
import torch

from ila_tllib import (AffinityTripletLoss, ClassifierPseudoLabeller, CosineSimilarity, ILALoss, KNNPseudoLabeller,
                       MultiSampleContrastiveLoss)
from ila_tllib.fused import FusedDecisions
from ila_oracle import ila_oracle, ila_oracle_gradient
from test_ila_loss import make_batch


def run(f_s, y_s, f_t, **kwargs):
    """Loss, both gradients and the decisions of one ILALoss call on copies of the features."""
    fused = kwargs.pop("fused", True)
    f_s, f_t = f_s.clone().requires_grad_(), f_t.clone().requires_grad_()
    ila = ILALoss(fused=fused, **kwargs)
    loss = ila(f_s, y_s, f_t)
    loss.backward()
    assert isinstance(ila.last, FusedDecisions) == fused
    return loss, f_s.grad, f_t.grad, ila


@pytest.mark.parametrize("seed, balanced, k, mu, m, temperature", [
    (0, True, 3, 0.67, None, 1.0), (1, True, 5, 0.33, None, 0.5), (2, False, 3, 0.5, None, 1.0),
    (3, False, 2, 0.67, 2, 2.0), (4, True, 1, 1.0, 1, 1.0), (5, False, 4, 0.75, 5, 0.1),
    (6, True, 3, 1.0, None, 0.5)])   # every target kept: the fused path's own branch, with a temperature
def test_fused_equals_composable(seed, balanced, k, mu, m, temperature):
    f_s, y_s, f_t = make_batch(seed, n_classes=4, per_class=3, n_t=11, d=5, balanced=balanced, spread=1.5)
    settings = dict(k=k, mu=mu, m=m, temperature=temperature)
    fused, composable = run(f_s, y_s, f_t, **settings), run(f_s, y_s, f_t, fused=False, **settings)
    assert composable[3].num_anchors > 0
    for ours, theirs in zip(fused[:3], composable[:3]):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-15)
    for name in ("pseudo_labels", "kept", "affinity"):
        assert torch.equal(getattr(fused[3], name), getattr(composable[3], name)), name
    torch.testing.assert_close(fused[3].ratio, composable[3].ratio, rtol=1e-12, atol=0)
    assert fused[3].num_anchors == composable[3].num_anchors


@pytest.mark.parametrize("mu", [1.0, 0.5])
def test_kept_targets_of_one_pseudo_label_leave_no_anchor_on_either_path(mu):
    # every kept target voted class 0: a class-0 source has positives only, a class-1 source negatives only,
    # so no source is an anchor (the loss is an exact 0), which ILA's diagnostics count as an empty batch
    g = torch.Generator().manual_seed(0)
    f_s = torch.cat([torch.randn(3, 4, generator=g, dtype=torch.float64),
                     10 + torch.randn(3, 4, generator=g, dtype=torch.float64)])
    y_s = torch.tensor([0, 0, 0, 1, 1, 1])
    f_t = 0.1 * torch.randn(5, 4, generator=g, dtype=torch.float64)
    fused, composable = run(f_s, y_s, f_t, k=1, mu=mu), run(f_s, y_s, f_t, k=1, mu=mu, fused=False)
    assert composable[3].pseudo_labels.tolist() == [0] * 5
    assert fused[3].num_anchors == composable[3].num_anchors == 0
    assert fused[0].item() == composable[0].item() == 0.0


def clustered(seed, n_classes, per_class, n_t, d, offset, spread):
    """Far-apart classes whose members lie close together: the short distances float32 loses."""
    g = torch.Generator().manual_seed(seed)
    centers = offset + 3 * torch.randn(n_classes, d, generator=g)
    y_s = torch.arange(n_classes).repeat(per_class)
    y_t = torch.randint(0, n_classes, (n_t,), generator=g)
    return (centers[y_s] + spread * torch.randn(len(y_s), d, generator=g),
            y_s, centers[y_t] + spread * torch.randn(n_t, d, generator=g))


@pytest.mark.parametrize("offset, spread", [(0.0, 0.01), (10.0, 0.05), (0.0, 1.0)])
def test_float32_matches_float64_oracle(offset, spread):
    f_s, y_s, f_t = clustered(0, n_classes=4, per_class=3, n_t=10, d=64, offset=offset, spread=spread)
    loss, grad_s, grad_t, ila = run(f_s, y_s, f_t, k=3, mu=0.7)
    assert loss.dtype == grad_s.dtype == grad_t.dtype == torch.float32 and ila.num_anchors > 0
    # the oracle sees exactly the float32 values, in float64 arithmetic
    lists = f_s.double().tolist(), y_s.tolist(), f_t.double().tolist()
    ref_loss, labels, gammas, kept, affinity = ila_oracle(*lists, 3, 0.7)
    assert ila.pseudo_labels.tolist() == labels
    assert set(ila.kept.nonzero().flatten().tolist()) == kept
    assert ila.affinity.tolist() == affinity
    torch.testing.assert_close(ila.ratio, torch.tensor(gammas, dtype=torch.float32))
    assert loss.item() == pytest.approx(ref_loss, rel=2 ** -23)
    _, ref_s, ref_t = ila_oracle_gradient(*lists, 3, 0.7)
    for ours, ref in ((grad_s, ref_s), (grad_t, ref_t)):
        ref = torch.tensor(ref, dtype=torch.float64)
        torch.testing.assert_close(ours.double(), ref, rtol=2 ** -23, atol=1e-9 * ref.abs().max().item())


def test_tied_votes_go_to_the_smallest_label():
    # 1-D, k = 2: the target at 0 has neighbours at -1 (label 2) and +1.5 (label 1) -> 1 against 2: label 1;
    # the target at 10 has neighbours 9 (label 0) and 11.5 (label 3) -> label 0; no similarity ties anywhere
    f_s = torch.tensor([[-1.0], [1.5], [9.0], [11.5], [30.0], [31.0]], dtype=torch.float32)
    y_s = torch.tensor([2, 1, 0, 3, 4, 4])
    f_t = torch.tensor([[0.0], [10.0], [30.4]], dtype=torch.float32)
    loss, _, _, ila = run(f_s, y_s, f_t, k=2, mu=1.0)
    ref = ila_oracle(f_s.double().tolist(), y_s.tolist(), f_t.double().tolist(), 2, 1.0)
    assert ila.pseudo_labels.tolist() == ref[1] == [1, 0, 4]
    assert loss.item() == pytest.approx(ref[0], rel=2 ** -23)


@pytest.mark.parametrize("seed", range(4))
def test_random_tied_votes_match_oracle_in_float32(seed):
    f_s, y_s, f_t = make_batch(seed, n_classes=6, per_class=2, n_t=12, spread=4.0)
    loss, _, _, ila = run(f_s.float(), y_s, f_t.float(), k=4, mu=0.67)
    ref_loss, labels, _, kept, _ = ila_oracle(f_s.float().double().tolist(), y_s.tolist(),
                                              f_t.float().double().tolist(), 4, 0.67)
    assert ila.pseudo_labels.tolist() == labels and set(ila.kept.nonzero().flatten().tolist()) == kept
    assert loss.item() == pytest.approx(ref_loss, rel=2 ** -23)


def test_equal_ratios_at_the_cut_keep_exactly_round_mu_n():
    # integer features: every distance is exact, so duplicated targets have exactly equal Γ;
    # targets 1, 2 and 3 are copies, and keeping 3 of 6 cuts through them
    f_s = torch.tensor([[0., 0.], [1., 0.], [8., 8.], [9., 8.], [0., 9.], [1., 9.]])
    y_s = torch.tensor([0, 0, 1, 1, 2, 2])
    f_t = torch.tensor([[0., 1.], [8., 6.], [8., 6.], [8., 6.], [4., 4.], [1., 7.]])
    loss, grad_s, grad_t, ila = run(f_s, y_s, f_t, k=1, mu=0.5)
    ref_loss, labels, gammas, ref_kept, _ = ila_oracle(f_s.double().tolist(), y_s.tolist(),
                                                       f_t.double().tolist(), 1, 0.5)
    assert gammas[1] == gammas[2] == gammas[3]
    assert ila.pseudo_labels.tolist() == labels
    torch.testing.assert_close(ila.ratio, torch.tensor(gammas, dtype=torch.float32))
    kept = set(ila.kept.nonzero().flatten().tolist())
    cut = sorted(gammas, reverse=True)[2]
    # defined: how many are kept, and every target strictly above / below the cut Γ
    assert len(kept) == 3 and {j for j in range(6) if gammas[j] > cut} <= kept
    assert not kept & {j for j in range(6) if gammas[j] < cut}
    assert len(kept & {1, 2, 3}) == len(ref_kept & {1, 2, 3})
    # which copy is kept does not change the loss, nor the gradient of the sources
    assert loss.item() == pytest.approx(ref_loss, rel=2 ** -23)
    _, ref_s, ref_t = ila_oracle_gradient(f_s.double().tolist(), y_s.tolist(), f_t.double().tolist(), 1, 0.5)
    torch.testing.assert_close(grad_s, torch.tensor(ref_s, dtype=torch.float32))
    torch.testing.assert_close(grad_t[1:4].sum(0), torch.tensor(ref_t[1:4], dtype=torch.float32).sum(0))


def test_similarity_ties_at_the_kth_place_do_not_matter_when_labels_agree():
    # the target at the origin is equidistant from two sources of class 1: k = 1 takes either
    f_s = torch.tensor([[1., 0.], [-1., 0.], [0., 3.], [0., -3.]])
    y_s = torch.tensor([1, 1, 0, 0])
    f_t = torch.tensor([[0., 0.], [0., 2.5]])
    loss, _, _, ila = run(f_s, y_s, f_t, k=1, mu=1.0)
    ref = ila_oracle(f_s.double().tolist(), y_s.tolist(), f_t.double().tolist(), 1, 1.0)
    assert ila.pseudo_labels.tolist() == ref[1] == [1, 0]
    assert loss.item() == pytest.approx(ref[0], rel=2 ** -23)


class MyLabeller(KNNPseudoLabeller):
    pass


@pytest.mark.parametrize("kwargs, fused", [
    ({}, True), ({"k": 3, "m": 2, "temperature": 0.5}, True),
    ({"pseudo_labeller": KNNPseudoLabeller(3)}, True),
    ({"metric_loss": MultiSampleContrastiveLoss(0.5)}, True),
    ({"fused": False}, False),
    ({"pseudo_labeller": MyLabeller(3)}, False),
    ({"similarity": CosineSimilarity()}, False),
    ({"metric_loss": AffinityTripletLoss()}, False),
    ({"metric_loss": MultiSampleContrastiveLoss(reduction="sum")}, False),
    ({"metric_loss": "msc-push"}, False), ({"metric_loss": "msc-pull"}, False),
    ({"pseudo_labeller": ClassifierPseudoLabeller()}, False)])
def test_the_fused_path_is_taken_only_for_the_papers_parts(kwargs, fused):
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=2, n_t=5)
    ila = ILALoss(**kwargs)
    ila(f_s, y_s, f_t, logits_t=torch.randn(5, 3, dtype=torch.float64))
    assert isinstance(ila.last, FusedDecisions) == fused


def test_a_setting_the_fused_path_does_not_read_sends_the_loss_down_the_composable_path(monkeypatch):
    # a setting added to the kNN labeller later (here "vote_weighting") must not be ignored by the fused path,
    # which computes the plain vote: away from its default the loss takes the composable path
    plain_init = KNNPseudoLabeller.__init__

    def init_with_a_new_setting(self, k=5, m=None, ratio_terms="top-m", vote_weighting="none"):
        plain_init(self, k, m, ratio_terms)
        self.vote_weighting = vote_weighting
    monkeypatch.setattr(KNNPseudoLabeller, "__init__", init_with_a_new_setting)
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=2, n_t=5)
    for setting, fused in (("none", True), ("distance", False)):
        ila = ILALoss(pseudo_labeller=KNNPseudoLabeller(3, vote_weighting=setting))
        ila(f_s, y_s, f_t)
        assert isinstance(ila.last, FusedDecisions) == fused, setting


def test_swapping_a_part_after_construction_is_honoured():
    f_s, y_s, f_t = make_batch(1, n_classes=3, per_class=2, n_t=5)
    ila = ILALoss(k=3)
    ila.metric_loss = AffinityTripletLoss()
    ila(f_s, y_s, f_t)
    assert not isinstance(ila.last, FusedDecisions)


def test_labels_beyond_num_classes_are_a_clear_error():
    f_s, y_s, f_t = make_batch(0, n_classes=3, per_class=2, n_t=4)
    with pytest.raises(ValueError, match="num_classes=2"):
        ILALoss(k=3)(f_s, y_s, f_t, num_classes=2)


def test_bfloat16_autocast_does_not_touch_the_loss():
    f_s, y_s, f_t = make_batch(2, n_classes=3, per_class=3, n_t=8, d=16)
    f_s, f_t = f_s.float(), f_t.float()
    expected = ILALoss(k=3, mu=0.75)(f_s, y_s, f_t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = ILALoss(k=3, mu=0.75)(f_s, y_s, f_t)
    assert under_autocast.dtype == torch.float32 and under_autocast.item() == expected.item()


def test_without_gradient_the_decisions_are_the_same():
    f_s, y_s, f_t = make_batch(3, n_classes=3, per_class=3, n_t=8)
    with_grad = run(f_s, y_s, f_t, k=3, mu=0.5)
    ila = ILALoss(k=3, mu=0.5)
    with torch.no_grad():
        loss = ila(f_s, y_s, f_t)
    assert loss.item() == with_grad[0].item() and torch.equal(ila.kept, with_grad[3].kept)
    assert math.isfinite(loss.item())


@pytest.mark.parametrize("fused", [True, False])
def test_detached_sources_keep_the_value_and_the_targets_gradient(fused):
    # --ila-detach-source: the same loss, the oracle's gradient for the targets, none for the sources
    f_s, y_s, f_t = make_batch(7, n_classes=4, per_class=3, n_t=11, d=5, balanced=True, spread=1.5)
    loss, grad_s, grad_t, ila = run(f_s, y_s, f_t, k=3, mu=0.7, fused=fused, detach_source=True)
    assert grad_s is None and ila.num_anchors > 0
    lists = f_s.tolist(), y_s.tolist(), f_t.tolist()
    assert loss.item() == pytest.approx(ila_oracle(*lists, 3, 0.7)[0], rel=1e-12)
    ref_t = torch.tensor(ila_oracle_gradient(*lists, 3, 0.7)[2], dtype=grad_t.dtype)
    torch.testing.assert_close(grad_t, ref_t, rtol=1e-9, atol=1e-12)


def test_a_temperature_below_1_over_700_takes_the_composable_path_and_keeps_its_anchors():
    # positives far less similar than negatives: at τ 1e-3 a positive's softmax share underflows to 0 in
    # float64, which the fused path's anchor test would read as "no positive"
    from ila_tllib import ILALoss
    f_s = torch.tensor([[0.], [9.9], [10.], [10.01]], dtype=torch.float64)
    f_t = torch.tensor([[0.], [10.]], dtype=torch.float64)
    y_s = torch.tensor([0, 0, 1, 1])
    results = []
    for fused in (True, False):
        ila = ILALoss(k=1, mu=1.0, temperature=1e-3, fused=fused)
        results.append((ila(f_s, y_s, f_t).item(), ila.num_anchors))
    assert results[0] == results[1] and results[0][1] == 4 and results[0][0] > 100


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("where, value", [("source", float("nan")), ("target", float("nan")),
                                          ("target", float("inf")), ("source", float("-inf"))])
def test_a_non_finite_feature_makes_the_loss_nan_on_both_paths(fused, where, value):
    # a diverged network: the loss says so at once, whichever path runs and whether or not the entry's row
    # is kept (the fused path read NaN distances as "not kept" and returned a finite loss)
    f_s, y_s, f_t = make_batch(5, n_classes=3, per_class=3, n_t=9, d=6, balanced=True, spread=1.5)
    assert math.isfinite(run(f_s, y_s, f_t, k=3, mu=0.67, fused=fused)[0].item())
    (f_s if where == "source" else f_t)[1, 2] = value
    loss, grad_s, grad_t, _ = run(f_s, y_s, f_t, k=3, mu=0.67, fused=fused)
    assert math.isnan(loss.item())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_features_give_the_same_float32_loss_on_both_paths(dtype):
    # the similarity works in at least float32 (half precision overflows and cancels d²): so does the loss on
    # both paths, and the gradients come back in the features' dtype
    f_s, y_s, f_t = make_batch(6, n_classes=3, per_class=3, n_t=9, d=6, balanced=True, spread=1.5)
    f_s, f_t = f_s.to(dtype), f_t.to(dtype)
    fused, composable = run(f_s, y_s, f_t, k=3, mu=0.67), run(f_s, y_s, f_t, k=3, mu=0.67, fused=False)
    assert composable[3].num_anchors > 0
    assert fused[0].dtype == composable[0].dtype == torch.float32
    torch.testing.assert_close(fused[0], composable[0], rtol=1e-6, atol=1e-7)
    for ours, theirs in zip(fused[1:3], composable[1:3]):
        assert ours.dtype == theirs.dtype == dtype
        torch.testing.assert_close(ours.float(), theirs.float(), rtol=2e-2, atol=1e-3)

