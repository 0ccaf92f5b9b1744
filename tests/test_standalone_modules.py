"""ila_tllib.standalone against independent oracles (plain math, explicit loops, hand-written losses)."""
import math
import os

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from ila_tllib import standalone as sa


def _warm_start_coeff(i, alpha, lo, hi, max_iters):
    return 2.0 * (hi - lo) / (1.0 + math.exp(-alpha * i / max_iters)) - (hi - lo) + lo


def _fixed_sigmoid_discriminator(in_feature):
    torch.manual_seed(1)
    d = nn.Sequential(nn.Linear(in_feature, 1), nn.Sigmoid())
    return d


# ---------------------------------------------------------------- gradient reversal

@pytest.mark.parametrize("alpha,lo,hi,max_iters", [(1.0, 0.0, 1.0, 1000), (10.0, 0.1, 2.0, 50)])
def test_warm_start_grl_schedule_and_reversed_gradient(alpha, lo, hi, max_iters):
    grl = sa.WarmStartGradientReverseLayer(alpha=alpha, lo=lo, hi=hi, max_iters=max_iters, auto_step=True)
    torch.manual_seed(0)
    w = torch.randn(3, 4)
    for i in [0, 1, 2, 3, 4, 5, 6]:
        assert grl.iter_num == i
        x = torch.randn(3, 4, requires_grad=True)
        y = grl(x)
        assert torch.equal(y, x)
        (y * w).sum().backward()
        expected = -_warm_start_coeff(i, alpha, lo, hi, max_iters) * w
        torch.testing.assert_close(x.grad, expected, rtol=1e-6, atol=1e-7)
    assert grl.iter_num == 7
    # far along the schedule the coefficient approaches hi
    grl.iter_num = 100 * max_iters
    assert abs(grl.coeff - hi) < 1e-6 * max(1.0, abs(hi))


def test_warm_start_grl_manual_step_and_default_start():
    grl = sa.WarmStartGradientReverseLayer(auto_step=False)
    x = torch.ones(2, requires_grad=True)
    grl(x).sum().backward()
    assert torch.equal(x.grad, torch.zeros(2))  # lo = 0 at iteration 0
    assert grl.iter_num == 0
    for _ in range(500):
        grl.step()
    assert grl.iter_num == 500
    assert grl.coeff == pytest.approx(2.0 / (1.0 + math.exp(-0.5)) - 1.0)
    assert sa.WarmStartGradientReverseLayer().auto_step is True


def test_gradient_reverse_layer_and_function():
    x = torch.randn(5, requires_grad=True)
    sa.GradientReverseLayer()(x).sum().backward()
    assert torch.equal(x.grad, -torch.ones(5))
    x.grad = None
    sa.GradientReverseLayer(coeff=0.5)(x).sum().backward()
    assert torch.equal(x.grad, -0.5 * torch.ones(5))
    x.grad = None
    sa.GradientReverseFunction.apply(x, 3.0).sum().backward()
    assert torch.equal(x.grad, -3.0 * torch.ones(5))
    # output is a fresh tensor: in-place changes do not touch the input
    y = sa.GradientReverseLayer()(x)
    y.data.add_(1.0)
    assert not torch.equal(x, y)


# ---------------------------------------------------------------- discriminator

def test_domain_discriminator_layout_and_parameters():
    d = sa.DomainDiscriminator(8, 16)
    kinds = [type(m).__name__ for m in d]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Sequential"]
    assert [type(m).__name__ for m in d[6]] == ["Linear", "Sigmoid"]
    assert d(torch.randn(4, 8)).shape == (4, 1)
    d2 = sa.DomainDiscriminator(8, 16, batch_norm=False, sigmoid=False)
    kinds2 = [type(m).__name__ for m in d2]
    assert kinds2 == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert d2[2].p == 0.5 and d2[6].out_features == 2
    groups = d.get_parameters()
    assert len(groups) == 1 and groups[0]["lr"] == 1.0
    assert [id(p) for p in groups[0]["params"]] == [id(p) for p in d.parameters()]


# ---------------------------------------------------------------- DANN

def _hand_dann(disc, f_s, f_t, w_s, w_t):
    p_s = disc(f_s).view(-1)
    p_t = disc(f_t).view(-1)
    bce_s = (w_s * -torch.log(p_s)).mean()
    bce_t = (w_t * -torch.log(1 - p_t)).mean()
    return 0.5 * (bce_s + bce_t), p_s, p_t


@pytest.mark.parametrize("n_t", [6, 4])   # 4: ILA's balanced source batch need not match -b
@pytest.mark.parametrize("weighted", [False, True])
def test_dann_loss_matches_hand_written_bce(weighted, n_t):
    torch.manual_seed(0)
    disc = _fixed_sigmoid_discriminator(3)
    f_s, f_t = torch.randn(6, 3, requires_grad=True), torch.randn(n_t, 3, requires_grad=True)
    w_s = torch.rand(6) if weighted else torch.ones(6)
    w_t = torch.rand(n_t) if weighted else torch.ones(n_t)
    grl = sa.WarmStartGradientReverseLayer(auto_step=False)
    grl.iter_num = 700
    coeff = grl.coeff
    loss_fn = sa.DomainAdversarialLoss(disc, grl=grl)
    loss = loss_fn(f_s, f_t, w_s, w_t) if weighted else loss_fn(f_s, f_t)
    loss.backward()
    got = (f_s.grad.clone(), f_t.grad.clone(), [p.grad.clone() for p in disc.parameters()])

    f_s2, f_t2 = f_s.detach().clone().requires_grad_(), f_t.detach().clone().requires_grad_()
    disc.zero_grad()
    expected, p_s, p_t = _hand_dann(disc, f_s2, f_t2, w_s, w_t)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(got[0], -coeff * f_s2.grad)
    torch.testing.assert_close(got[1], -coeff * f_t2.grad)
    for g, p in zip(got[2], disc.parameters()):
        torch.testing.assert_close(g, p.grad)  # the discriminator itself is not reversed
    acc_s = (p_s >= 0.5).float().mean() * 100
    acc_t = (p_t < 0.5).float().mean() * 100
    assert float(loss_fn.domain_discriminator_accuracy) == pytest.approx(float(0.5 * (acc_s + acc_t)))


def test_dann_default_grl_and_two_logit_variant():
    torch.manual_seed(0)
    loss_fn = sa.DomainAdversarialLoss(sa.DomainDiscriminator(3, 4))
    g = loss_fn.grl
    assert isinstance(g, sa.WarmStartGradientReverseLayer)
    assert (g.alpha, g.lo, g.hi, g.max_iters, g.auto_step) == (1.0, 0.0, 1.0, 1000, True)
    loss_fn(torch.randn(4, 3), torch.randn(4, 3))
    assert g.iter_num == 1

    disc = nn.Linear(3, 2)
    f_s, f_t = torch.randn(5, 3), torch.randn(5, 3)
    loss_fn = sa.DomainAdversarialLoss(disc, sigmoid=False)
    loss = loss_fn(f_s, f_t)
    logits = disc(torch.cat([f_s, f_t]))
    labels = [1] * 5 + [0] * 5
    hand = sum(-torch.log_softmax(logits[i], 0)[labels[i]] for i in range(10)) / 10
    torch.testing.assert_close(loss, hand)
    acc = sum(int(logits[i].argmax()) == labels[i] for i in range(10)) * 10.0
    assert float(loss_fn.domain_discriminator_accuracy) == pytest.approx(acc)


# ---------------------------------------------------------------- CDAN

def test_entropy_matches_loop():
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(5, 4), dim=1)
    expected = [-sum(float(p[i, c]) * math.log(float(p[i, c]) + 1e-5) for c in range(4)) for i in range(5)]
    torch.testing.assert_close(sa.entropy(p), torch.tensor(expected), rtol=1e-5, atol=1e-6)
    assert float(sa.entropy(p, reduction="mean")) == pytest.approx(sum(expected) / 5, rel=1e-5)


def test_multilinear_map_matches_loop():
    torch.manual_seed(0)
    f, g = torch.randn(3, 5), torch.randn(3, 4)
    out = sa.MultiLinearMap()(f, g)
    assert out.shape == (3, 20)
    for i in range(3):
        for c in range(4):
            for k in range(5):
                assert float(out[i, c * 5 + k]) == pytest.approx(float(g[i, c] * f[i, k]), rel=1e-6)


def test_randomized_multilinear_map_matches_formula():
    torch.manual_seed(0)
    m = sa.RandomizedMultiLinearMap(features_dim=5, num_classes=4, output_dim=16)
    assert m.Rf.shape == (5, 16) and m.Rg.shape == (4, 16)
    assert list(m.parameters()) == []  # fixed, never trained
    f, g = torch.randn(3, 5), torch.randn(3, 4)
    out = m(f, g)
    Rf, Rg = m.Rf.double().numpy(), m.Rg.double().numpy()
    fn, gn = f.double().numpy(), g.double().numpy()
    for i in range(3):
        for j in range(16):
            a = sum(fn[i, k] * Rf[k, j] for k in range(5))
            b = sum(gn[i, c] * Rg[c, j] for c in range(4))
            assert float(out[i, j]) == pytest.approx(a * b / math.sqrt(16), rel=1e-4, abs=1e-5)
    assert torch.equal(m(f, g), out)  # same map on every call


@pytest.mark.parametrize("entropy_conditioning", [False, True])
def test_cdan_loss_matches_hand_computation(entropy_conditioning):
    torch.manual_seed(0)
    n, C, D = 4, 3, 5
    disc = _fixed_sigmoid_discriminator(C * D)
    g_s, g_t = torch.randn(n, C, requires_grad=True), torch.randn(n, C, requires_grad=True)
    f_s, f_t = torch.randn(n, D, requires_grad=True), torch.randn(n, D, requires_grad=True)
    loss_fn = sa.ConditionalDomainAdversarialLoss(disc, entropy_conditioning=entropy_conditioning)
    loss_fn.grl.iter_num = 2000
    coeff = loss_fn.grl.coeff
    loss = loss_fn(g_s, f_s, g_t, f_t)
    loss.backward()
    assert g_s.grad is None and g_t.grad is None  # predictions are detached
    got_f = torch.cat([f_s.grad, f_t.grad])

    # oracle: explicit loops, no gradient reversal
    f = torch.cat([f_s, f_t]).detach().clone().requires_grad_()
    probs = torch.softmax(torch.cat([g_s, g_t]).detach(), dim=1)
    rows = []
    for i in range(2 * n):
        rows.append(torch.stack([probs[i, c] * f[i, k] for c in range(C) for k in range(D)]))
    p = disc(torch.stack(rows)).view(-1)
    labels = [1.0] * n + [0.0] * n
    if entropy_conditioning:
        raw = []
        for i in range(2 * n):
            h = -sum(float(probs[i, c]) * math.log(float(probs[i, c]) + 1e-5) for c in range(C))
            raw.append(1.0 + math.exp(-h))
        weights = [w / sum(raw) * (2 * n) for w in raw]
        assert sum(weights) == pytest.approx(2 * n)
    else:
        weights = [1.0] * (2 * n)
    terms = [-(weights[i] * (torch.log(p[i]) if labels[i] else torch.log(1 - p[i]))) for i in range(2 * n)]
    expected = sum(terms) / (2 * n)
    expected.backward()
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(got_f, -coeff * f.grad)
    acc = sum((float(p[i].detach()) >= 0.5) == bool(labels[i]) for i in range(2 * n)) * 100.0 / (2 * n)
    assert float(loss_fn.domain_discriminator_accuracy) == pytest.approx(acc)


def test_cdan_randomized_uses_its_map():
    torch.manual_seed(0)
    loss_fn = sa.ConditionalDomainAdversarialLoss(sa.DomainDiscriminator(8, 4), randomized=True,
                                                  num_classes=3, features_dim=5, randomized_dim=8)
    assert isinstance(loss_fn.map, sa.RandomizedMultiLinearMap)
    assert "map.Rf" in loss_fn.state_dict()
    loss = loss_fn(torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 3), torch.randn(4, 5))
    assert loss.dim() == 0 and torch.isfinite(loss)
    with pytest.raises(ValueError):
        sa.ConditionalDomainAdversarialLoss(sa.DomainDiscriminator(8, 4), randomized=True)


# ---------------------------------------------------------------- classifier

class _TinyBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.out_features = 6

    def forward(self, x):
        return self.conv(x)


def test_classifier_outputs_and_parameter_groups():
    torch.manual_seed(0)
    model = sa.Classifier(_TinyBackbone(), num_classes=4)
    assert model.features_dim == 6 and isinstance(model.bottleneck, nn.Identity)
    x = torch.randn(2, 3, 8, 8)
    model.train()
    logits, features = model(x)
    assert logits.shape == (2, 4) and features.shape == (2, 6)
    torch.testing.assert_close(features, model.backbone(x).mean(dim=(2, 3)))
    torch.testing.assert_close(logits, model.head(features))
    model.eval()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 4)

    groups = model.get_parameters(base_lr=0.01)
    assert [g["lr"] for g in groups] == pytest.approx([0.001, 0.01, 0.01])
    scratch = sa.Classifier(_TinyBackbone(), num_classes=4, finetune=False)
    assert [g["lr"] for g in scratch.get_parameters()] == [1.0, 1.0, 1.0]
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_image_classifier_bottleneck():
    torch.manual_seed(0)
    model = sa.ImageClassifier(_TinyBackbone(), num_classes=3, bottleneck_dim=7)
    assert [type(m).__name__ for m in model.bottleneck] == ["Linear", "BatchNorm1d", "ReLU"]
    assert model.features_dim == 7 and model.head.in_features == 7
    assert sa.ImageClassifier(_TinyBackbone(), num_classes=3).features_dim == 256
    model.train()
    logits, f = model(torch.randn(4, 3, 8, 8))
    assert logits.shape == (4, 3) and f.shape == (4, 7) and bool((f >= 0).all())
    plain = sa.ImageClassifier(sa.lenet(), 10, bottleneck_dim=16, pool_layer=nn.Identity())
    plain.train()
    assert plain(torch.randn(2, 1, 28, 28))[1].shape == (2, 16)


# ---------------------------------------------------------------- meters and metrics

def _example_meters():
    spec = [("Time", ":5.2f", 0.78, 0.60), ("Data", ":5.2f", 0.40, 0.22), ("Loss", ":6.2f", 0.96, 0.74),
            ("Cls Acc", ":3.1f", 93.3, 96.9), ("Domain Acc", ":3.1f", 61.1, 64.1)]
    meters = []
    for name, fmt, first, second in spec:
        m = sa.AverageMeter(name, fmt)
        m.update(first)
        m.update(second)
        meters.append(m)
    return meters


def test_progress_line_exact(capsys):
    progress = sa.ProgressMeter(1000, _example_meters(), prefix="Epoch: [1]")
    progress.display(900)
    expected = ("Epoch: [1][ 900/1000]\tTime  0.60 ( 0.69)\tData  0.22 ( 0.31)\tLoss   0.74 (  0.85)\t"
                "Cls Acc 96.9 (95.1)\tDomain Acc 64.1 (62.6)\n")
    assert capsys.readouterr().out == expected


def test_average_meter_weighted_and_reset():
    m = sa.AverageMeter("Acc", ":4.1f")
    m.update(50.0, n=2)
    m.update(80.0, n=1)
    assert (m.val, m.sum, m.count) == (80.0, 180.0, 3)
    assert m.avg == pytest.approx(60.0)
    assert str(m) == "Acc 80.0 (60.0)"
    m.reset()
    assert (m.val, m.avg, m.sum, m.count) == (0, 0, 0, 0)


def test_accuracy_hand_case():
    output = torch.tensor([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5], [0.3, 0.4, 0.3]])
    target = torch.tensor([1, 2, 2, 0])
    top1, top2 = sa.accuracy(output, target, topk=(1, 2))
    assert top1.numel() == 1 and top2.numel() == 1
    assert float(top1) == pytest.approx(50.0)   # rows 0 and 2
    assert float(top2) == pytest.approx(75.0)   # plus row 3 (class 0 ties second at 0.3, first index wins)
    assert float(sa.binary_accuracy(torch.tensor([[0.9], [0.4], [0.5]]), torch.tensor([[1.], [1.], [0.]]))) \
        == pytest.approx(100.0 / 3)


def test_confusion_matrix():
    cm = sa.ConfusionMatrix(3)
    cm.update(torch.tensor([0, 0, 1, 2, 2]), torch.tensor([0, 1, 1, 2, 0]))
    cm.update(torch.tensor([1]), torch.tensor([[0.1, 0.9, 0.0]]))  # scores are arg-maxed
    assert cm.mat.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    acc_global, acc, iou = cm.compute()
    assert float(acc_global) == pytest.approx(4 / 6)
    torch.testing.assert_close(acc, torch.tensor([0.5, 1.0, 0.5]))
    text = cm.format(["cat", "dog", "bird"])
    assert "global correct: 66.7" in text and "mean correct:66.7" in text       # tllib's spelling
    # dog: 2 of 2 right; IoU 2 / (2 + 3 - 2)
    assert any(line.split() == ["|", "dog", "|", "100.0", "|", str((torch.tensor(2.0) / 3 * 100).item()), "|"]
               for line in text.splitlines()), text
    # a class absent from the targets: 0, not NaN
    absent = sa.ConfusionMatrix(3)
    absent.update(torch.tensor([0, 1]), torch.tensor([0, 2]))
    assert absent.compute()[1].tolist() == [1.0, 0.0, 0.0] and "nan" not in absent.format(["a", "b", "c"])


# ---------------------------------------------------------------- data, logger

def test_forever_data_iterator_wraps_around():
    data = TensorDataset(torch.arange(5).float(), torch.arange(5))
    loader = DataLoader(data, batch_size=2, shuffle=False)
    it = sa.ForeverDataIterator(loader, device=torch.device("cpu"))
    assert len(it) == 3
    seen = [next(it)[1].tolist() for _ in range(7)]
    assert seen == [[0, 1], [2, 3], [4], [0, 1], [2, 3], [4], [0, 1]]


# ---------------------------------------------------------------- backbones

def test_lenet_and_dtn_shapes():
    torch.manual_seed(0)
    net = sa.lenet(pretrained=False)
    assert net.out_features == 500
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 500)
    assert [type(m).__name__ for m in net] == ["Conv2d", "MaxPool2d", "ReLU", "Conv2d", "Dropout2d", "MaxPool2d",
                                              "ReLU", "Flatten", "Linear", "ReLU", "Dropout"]
    net = sa.dtn()
    assert net.out_features == 512
    assert net(torch.randn(3, 3, 32, 32)).shape == (3, 512)
    assert net[0].stride == (2, 2) and net[0].padding == (2, 2)


# ---------------------------------------------------------------- analysis

def test_collect_feature_stops_and_uses_eval_mode():
    data = TensorDataset(torch.randn(10, 4), torch.zeros(10))
    loader = DataLoader(data, batch_size=3)
    extractor = nn.Sequential(nn.Linear(4, 2), nn.Dropout(0.9))
    feats = sa.collect_feature(loader, extractor, torch.device("cpu"))
    assert feats.shape == (10, 2) and not extractor.training
    torch.testing.assert_close(feats, extractor(data.tensors[0]).detach())
    assert sa.collect_feature(loader, extractor, torch.device("cpu"), max_num_features=2).shape == (6, 2)


def test_a_distance_separable_vs_identical():
    torch.manual_seed(0)
    source = torch.randn(200, 8) + 3.0
    target = torch.randn(200, 8) - 3.0
    far = sa.a_distance.calculate(source, target, torch.device("cpu"), progress=False)
    assert isinstance(far, torch.Tensor) and far.dim() == 0 and far > 1.6
    same = torch.randn(200, 8)
    near = sa.a_distance.calculate(same, same.clone(), torch.device("cpu"), progress=False)
    assert near < 0.8


def test_tsne_writes_file(tmp_path):
    torch.manual_seed(0)
    filename = str(tmp_path / "tsne.png")
    sa.tsne.visualize(torch.randn(15, 5), torch.randn(15, 5) + 2, filename)
    assert os.path.getsize(filename) > 0


# ---------------------------------------------------------------- MDD and BSP

def test_mdd_loss_matches_its_formula_by_loop():
    torch.manual_seed(1)
    y_s, y_s_adv, y_t, y_t_adv = torch.randn(5, 3), torch.randn(5, 3), torch.randn(4, 3), torch.randn(4, 3)
    total_s = total_t = 0.0
    for i in range(5):
        p = torch.softmax(y_s_adv[i], 0)[int(y_s[i].argmax())].item()
        total_s += -4.0 * -math.log(p)
    for i in range(4):
        p = torch.softmax(y_t_adv[i], 0)[int(y_t[i].argmax())].item()
        total_t += math.log(min(1 - p + 1e-6, 1.0))
    expected = total_s / 5 + total_t / 4
    assert sa.MarginDisparityDiscrepancy(4.)(y_s, y_s_adv, y_t, y_t_adv).item() == pytest.approx(expected, rel=1e-5)


def test_mdd_classifier_heads_and_reversal():
    net = sa.MDDClassifier(sa.lenet(), 3, bottleneck_dim=8, width=8, pool_layer=nn.Identity())
    x = torch.randn(4, 1, 28, 28)
    logits, logits_adv = net(x)
    assert logits.shape == logits_adv.shape == (4, 3)
    net.eval()
    assert net(x).shape == (4, 3)
    # the adversarial head's gradient reaches the features reversed and scaled by the warm-start coefficient
    net.adv_head.eval()                            # no dropout: the two passes must see the same head
    net.grl_layer.iter_num = 10 ** 6               # coefficient = hi = 0.1 at the end of the warm start
    f = torch.randn(2, 8, requires_grad=True)
    net.adv_head(net.grl_layer(f)).sum().backward()
    g_rev = f.grad.clone()
    f.grad = None
    net.adv_head(f).sum().backward()
    torch.testing.assert_close(g_rev, -0.1 * f.grad, rtol=1e-4, atol=1e-6)


def test_bsp_penalty_is_the_largest_squared_singular_values():
    import numpy as np
    torch.manual_seed(2)
    f_s, f_t = torch.randn(6, 4), torch.randn(5, 4)
    expected = np.linalg.svd(f_s.numpy(), compute_uv=False)[0] ** 2 + np.linalg.svd(f_t.numpy(), compute_uv=False)[0] ** 2
    assert sa.BatchSpectralPenalizationLoss()(f_s, f_t).item() == pytest.approx(float(expected), rel=1e-5)
