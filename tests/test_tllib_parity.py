"""ila_tllib.standalone against an installed tllib: same weights and inputs give the same
outputs and gradients. Skipped where tllib is not importable; the backend-selection tests
at the end always run (each in a subprocess, so the environment variable applies at import).
"""
import copy
import inspect
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

from helpers import HIDE_TLLIB

from ila_tllib import backend
from ila_tllib import standalone as sa

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _assert_same(a, b):
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def _grads(*tensors):
    return [t.grad.clone() for t in tensors]


def _param_grads(module):
    return [p.grad.clone() for p in module.parameters()]


def _copy_weights(src, dst):
    """Copy parameters and buffers in order (also proves the layouts line up)."""
    dst.load_state_dict(src.state_dict())


# ---------------------------------------------------------------- GRL

@pytest.mark.parametrize("alpha,lo,hi,max_iters", [(1.0, 0.0, 1.0, 1000), (5.0, 0.2, 1.5, 20)])
def test_grl_schedule(tl, alpha, lo, hi, max_iters):
    ours = sa.WarmStartGradientReverseLayer(alpha=alpha, lo=lo, hi=hi, max_iters=max_iters, auto_step=True)
    theirs = tl["WarmStartGradientReverseLayer"](alpha=alpha, lo=lo, hi=hi, max_iters=max_iters, auto_step=True)
    torch.manual_seed(0)
    for _ in range(8):
        x = torch.randn(4, 3)
        w = torch.randn(4, 3)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        (ours(xa) * w).sum().backward()
        (theirs(xb) * w).sum().backward()
        _assert_same(xa.grad, xb.grad)
        assert ours.iter_num == theirs.iter_num
    # a resumed schedule: restore the counter
    ours.iter_num = theirs.iter_num = 333
    xa, xb = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    ours(xa).sum().backward()
    theirs(xb).sum().backward()
    _assert_same(xa.grad, xb.grad)


# ---------------------------------------------------------------- discriminator

@pytest.mark.parametrize("batch_norm,sigmoid", [(True, True), (False, True), (True, False)])
def test_domain_discriminator(tl, batch_norm, sigmoid):
    torch.manual_seed(0)
    ours = sa.DomainDiscriminator(6, 8, batch_norm=batch_norm, sigmoid=sigmoid)
    theirs = tl["DomainDiscriminator"](6, 8, batch_norm=batch_norm, sigmoid=sigmoid)
    _copy_weights(ours, theirs)
    x = torch.randn(10, 6)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(1)  # same dropout masks
    ya = ours(xa)
    torch.manual_seed(1)
    yb = theirs(xb)
    _assert_same(ya, yb)
    ya.sum().backward()
    yb.sum().backward()
    _assert_same(xa.grad, xb.grad)
    for ga, gb in zip(_param_grads(ours), _param_grads(theirs)):
        _assert_same(ga, gb)
    assert [g["lr"] for g in ours.get_parameters()] == [g["lr"] for g in theirs.get_parameters()]


# ---------------------------------------------------------------- DANN

@pytest.mark.parametrize("weighted", [False, True])
def test_domain_adversarial_loss(tl, weighted):
    torch.manual_seed(0)
    disc_a = sa.DomainDiscriminator(5, 8)
    disc_b = tl["DomainDiscriminator"](5, 8)
    _copy_weights(disc_a, disc_b)
    ours, theirs = sa.DomainAdversarialLoss(disc_a), tl["DomainAdversarialLoss"](disc_b)
    ours.grl.iter_num = theirs.grl.iter_num = 250
    f_s, f_t = torch.randn(6, 5), torch.randn(6, 5)
    w = (torch.rand(6), torch.rand(6)) if weighted else ()
    for _ in range(2):  # the second call sees the advanced schedule
        a = [f_s.clone().requires_grad_(), f_t.clone().requires_grad_()]
        b = [f_s.clone().requires_grad_(), f_t.clone().requires_grad_()]
        disc_a.zero_grad()
        disc_b.zero_grad()
        la, lb = ours(*a, *w), theirs(*b, *w)
        _assert_same(la, lb)
        assert float(ours.domain_discriminator_accuracy) == pytest.approx(float(theirs.domain_discriminator_accuracy))
        la.backward()
        lb.backward()
        for ga, gb in zip(_grads(*a) + _param_grads(disc_a), _grads(*b) + _param_grads(disc_b)):
            _assert_same(ga, gb)
    assert ours.grl.iter_num == theirs.grl.iter_num


def test_tllib_dann_loss_needs_equal_batches(tl):
    # why ila_dann.py takes the standalone loss when ILA's balanced source batch differs from -b
    # (tests/test_scripts.py checks that choice): tllib halves the joint batch
    loss = tl["DomainAdversarialLoss"](tl["DomainDiscriminator"](5, 8))
    with pytest.raises(RuntimeError):
        loss(torch.randn(6, 5), torch.randn(4, 5))


def test_pieces_that_need_equal_batches_are_replaced_only_when_the_sizes_differ(tl, monkeypatch, capsys):
    # ILA's class-balanced source batch may differ from -b: the scripts then take the standalone piece of
    # those tllib's that need one size (backend.EQUAL_BATCHES_ONLY), and only of those
    monkeypatch.setattr(backend, "_chosen", ("tllib", tl, "tllib pieces: tllib"))
    assert set(backend.EQUAL_BATCHES_ONLY) == {"DomainAdversarialLoss", "MarginDisparityDiscrepancy"}
    for name in backend.EQUAL_BATCHES_ONLY:
        assert backend.for_batches(name, 8, 8) is tl[name] and capsys.readouterr().out == ""
        assert backend.for_batches(name, 6, 8) is getattr(sa, name)
        assert f"{name}: the standalone one, as the source batch (6) and the target batch (8) differ" in \
            capsys.readouterr().out
    cdan = backend.for_batches("ConditionalDomainAdversarialLoss", 6, 4)
    assert cdan is tl["ConditionalDomainAdversarialLoss"]        # tllib's takes batches of two sizes:
    logits, features = torch.randn(10, 3), torch.randn(10, 5)
    assert torch.isfinite(cdan(tl["DomainDiscriminator"](15, 8))(logits[:6], features[:6], logits[6:], features[6:]))
    monkeypatch.setattr(backend, "_chosen", ("standalone", {n: getattr(sa, n) for n in backend.PIECES}, "s"))
    assert backend.for_batches("DomainAdversarialLoss", 6, 8) is sa.DomainAdversarialLoss
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------- CDAN

@pytest.mark.parametrize("entropy_conditioning,randomized", [(False, False), (True, False), (False, True),
                                                             (True, True)])
def test_conditional_domain_adversarial_loss(tl, entropy_conditioning, randomized):
    n, C, D, rd = 4, 3, 5, 16
    in_feature = rd if randomized else C * D
    torch.manual_seed(0)
    disc_a = sa.DomainDiscriminator(in_feature, 8)
    disc_b = tl["DomainDiscriminator"](in_feature, 8)
    _copy_weights(disc_a, disc_b)
    kwargs = dict(entropy_conditioning=entropy_conditioning, randomized=randomized, num_classes=C,
                  features_dim=D, randomized_dim=rd)
    ours = sa.ConditionalDomainAdversarialLoss(disc_a, **kwargs)
    theirs = tl["ConditionalDomainAdversarialLoss"](disc_b, **kwargs)
    if randomized:
        theirs.map.Rf = ours.map.Rf.clone()
        theirs.map.Rg = ours.map.Rg.clone()
    ours.grl.iter_num = theirs.grl.iter_num = 600
    g_s, f_s, g_t, f_t = torch.randn(n, C), torch.randn(n, D), torch.randn(n, C), torch.randn(n, D)
    a = [t.clone().requires_grad_() for t in (g_s, f_s, g_t, f_t)]
    b = [t.clone().requires_grad_() for t in (g_s, f_s, g_t, f_t)]
    la, lb = ours(*a), theirs(*b)
    _assert_same(la, lb)
    assert float(ours.domain_discriminator_accuracy) == pytest.approx(float(theirs.domain_discriminator_accuracy))
    la.backward()
    lb.backward()
    for ta, tb in zip(a, b):
        assert (ta.grad is None) == (tb.grad is None)
        if ta.grad is not None:
            _assert_same(ta.grad, tb.grad)
    for ga, gb in zip(_param_grads(disc_a), _param_grads(disc_b)):
        _assert_same(ga, gb)


def test_cdan_signature_compatible(tl):
    ours = inspect.signature(sa.ConditionalDomainAdversarialLoss).parameters
    theirs = inspect.signature(tl["ConditionalDomainAdversarialLoss"]).parameters
    for name, param in theirs.items():
        assert name in ours and ours[name].default == param.default, name


# ---------------------------------------------------------------- classifier

class _TinyBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        self.out_features = 6

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize("image,finetune", [(False, True), (True, True), (True, False)])
def test_classifier(tl, image, finetune):
    torch.manual_seed(0)
    backbone = _TinyBackbone()
    if image:
        ours = sa.ImageClassifier(copy.deepcopy(backbone), 4, bottleneck_dim=7, finetune=finetune)
        theirs = tl["ImageClassifier"](copy.deepcopy(backbone), 4, bottleneck_dim=7, finetune=finetune)
    else:
        ours = sa.Classifier(copy.deepcopy(backbone), 4, finetune=finetune)
        theirs = tl["Classifier"](copy.deepcopy(backbone), 4, finetune=finetune)
    _copy_weights(ours, theirs)
    assert ours.features_dim == theirs.features_dim
    x = torch.randn(5, 3, 8, 8)
    ours.train()
    theirs.train()
    (ya, fa), (yb, fb) = ours(x), theirs(x)
    _assert_same(ya, yb)
    _assert_same(fa, fb)
    (ya.sum() + fa.sum()).backward()
    (yb.sum() + fb.sum()).backward()
    for ga, gb in zip(_param_grads(ours), _param_grads(theirs)):
        _assert_same(ga, gb)
    ours.eval()
    theirs.eval()
    _assert_same(ours(x), theirs(x))
    groups_a, groups_b = ours.get_parameters(base_lr=0.01), theirs.get_parameters(base_lr=0.01)
    assert [g["lr"] for g in groups_a] == pytest.approx([g["lr"] for g in groups_b])
    assert [len(list(g["params"])) for g in groups_a] == [len(list(g["params"])) for g in groups_b]


# ---------------------------------------------------------------- small utilities

def test_meters_and_accuracy(tl, capsys):
    lines = []
    for make_avg, make_progress in ((sa.AverageMeter, sa.ProgressMeter), (tl["AverageMeter"], tl["ProgressMeter"])):
        meters = [make_avg("Loss", ":6.2f"), make_avg("Acc", ":3.1f")]
        for m, v in zip(meters, (0.5, 91.25)):
            m.update(v, n=3)
            m.update(v / 2, n=1)
        make_progress(250, meters, prefix="Epoch: [3]").display(7)
        lines.append(capsys.readouterr().out)
    assert lines[0] == lines[1]
    torch.manual_seed(0)
    output, target = torch.randn(20, 5), torch.randint(0, 5, (20,))
    for a, b in zip(sa.accuracy(output, target, topk=(1, 3)), tl["accuracy"](output, target, topk=(1, 3))):
        assert float(a) == pytest.approx(float(b))


def test_a_distance_prints_and_returns_as_tllibs(tl, capsys):
    # the analysis log's lines read alike with either backend: per-epoch "epoch E accuracy: A A-dist: D" with
    # the numbers as tllib formats them, and "A-distance = tensor(...)"; on perfectly separated features both
    # give the same numbers
    torch.manual_seed(0)
    source, target = torch.randn(60, 4) + 6.0, torch.randn(60, 4) - 6.0
    printed, returned = [], []
    for calculate in (sa.a_distance.calculate, tl["a_distance"].calculate):
        torch.manual_seed(1)
        result = calculate(source, target, torch.device("cpu"), training_epochs=2)
        printed.append(capsys.readouterr().out)
        print("A-distance =", result)
        returned.append(capsys.readouterr().out)
    assert printed[0] == printed[1] == "epoch 0 accuracy: 100.0 A-dist: 2.0\nepoch 1 accuracy: 100.0 A-dist: 2.0\n"
    assert returned[0] == returned[1] == "A-distance = tensor(2.)\n"


def test_per_class_table_reads_as_tllibs(tl):
    # --per-class-eval without tllib printed its own plain table ("mean correct: x"); tllib prints a
    # prettytable with the values unrounded: the same text now, for every class present in the targets
    torch.manual_seed(0)
    target, output = torch.arange(41) % 5, torch.randn(41, 5)
    names = ["back_pack", "b", "cc", "x" * 11, "desk_lamp"]
    ours, theirs = sa.ConfusionMatrix(5), tl["ConfusionMatrix"](5)
    ours.update(target, output)
    theirs.update(target, output.argmax(1))
    assert ours.format(names) == theirs.format(names)
    assert ours.format(names).splitlines()[1].startswith("mean correct:") and "\n+-------------+" in ours.format(names)


def test_digit_backbones(tl):
    for name, shape in (("lenet", (2, 1, 28, 28)), ("dtn", (2, 3, 32, 32))):
        ours, theirs = getattr(sa, name)(), tl[name]()
        assert ours.out_features == theirs.out_features
        _copy_weights(ours, theirs)
        ours.eval()
        theirs.eval()
        x = torch.randn(*shape)
        _assert_same(ours(x), theirs(x))


# ---------------------------------------------------------------- backend selection (always runs)

def _pythonpath(hide_tllib: bool, *first) -> str:
    """PYTHONPATH for a subprocess; with ``hide_tllib`` the shim's tllib, which fails to import, comes first."""
    return os.pathsep.join([HIDE_TLLIB] * hide_tllib + list(first) + [os.environ.get("PYTHONPATH", "")])


def _run_backend(env_value, code="import ila_tllib.backend as b; print(b.BACKEND); print(b.describe())",
                 hide_tllib=False):
    env = dict(os.environ)
    if env_value is None:
        env.pop(backend.ENV_VAR, None)
    else:
        env[backend.ENV_VAR] = env_value
    env["PYTHONPATH"] = _pythonpath(hide_tllib, REPO_ROOT)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_backend_forced_standalone():
    code = ("import ila_tllib.backend as b, ila_tllib.standalone as s, sys\n"
            "print(b.BACKEND); print(b.describe())\n"
            "assert all(getattr(b, n) is getattr(s, n) for n in b.PIECES)\n"
            "assert 'tllib' not in sys.modules\n")
    result = _run_backend("standalone", code)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()[:2]
    assert first == "standalone"
    assert second.startswith("tllib pieces: standalone (ila_tllib.standalone;")
    assert "ILA_TLLIB_BACKEND=standalone" in second


_SCENARIOS = """
import importlib, json, os, sys
out = {}
for value in ("auto", "tllib", "nonsense"):
    os.environ["ILA_TLLIB_BACKEND"] = value
    try:
        module = sys.modules.get("ila_tllib.backend")
        b = importlib.reload(module) if module else importlib.import_module("ila_tllib.backend")
        out[value] = ["ok", b.BACKEND, b.describe()]
    except Exception as error:
        out[value] = ["error", type(error).__name__, str(error)]
print(json.dumps(out))
"""


@pytest.mark.parametrize("hide_tllib", [False, True], ids=["as_installed", "tllib_hidden"])
def test_backend_auto_forced_tllib_and_invalid(hide_tllib):
    # one interpreter, the module re-imported per setting (cheaper than a process each)
    result = _run_backend(None, _SCENARIOS, hide_tllib)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    status, chosen, line = out["auto"]
    # tllib's pieces wherever tllib imports (CI installs tllib 0.4), else the standalone ones
    probe = subprocess.run([sys.executable, "-c", "import tllib"], capture_output=True,
                           env=dict(os.environ, PYTHONPATH=_pythonpath(hide_tllib)))
    assert status == "ok" and chosen == ("tllib" if probe.returncode == 0 else "standalone")
    if chosen == "tllib":
        assert line.startswith("tllib pieces: tllib ")
        assert out["tllib"][:2] == ["ok", "tllib"]
    else:
        assert line.startswith("tllib pieces: standalone (ila_tllib.standalone; tllib not importable: ")
        assert out["tllib"][:2] == ["error", "TllibUnavailableError"] and "ILA_TLLIB_BACKEND=tllib" in out["tllib"][2]
    assert out["nonsense"][:2] == ["error", "BackendChoiceError"]


def test_tllib_tsne_is_imported_only_when_looked_up(tl):
    # training looks up every other piece; tllib's t-SNE (scikit-learn, matplotlib) waits for the analysis phase
    code = ("import sys, ila_tllib.backend as b\n"
            "training = [getattr(b, n) for n in b.PIECES if n != 'tsne']\n"
            "print(b.BACKEND, len(training), 'sklearn.manifold' in sys.modules)\n"
            "print(b.tsne.__name__, 'sklearn.manifold' in sys.modules)\n")
    result = _run_backend("tllib", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"tllib {len(backend.PIECES) - 1} False", "tllib.utils.analysis.tsne True"]


# ---------------------------------------------------------------- MDD and BSP

def test_mdd_loss(tl):
    torch.manual_seed(0)
    logits = [torch.randn(6, 4, requires_grad=True) for _ in range(4)]
    adversarial = logits[1], logits[3]        # the main heads' logits enter through their argmax only
    ours = sa.MarginDisparityDiscrepancy(margin=4.)(*logits)
    ours.backward()
    grads = _grads(*adversarial)
    for t in adversarial:
        t.grad = None
    theirs = tl["MarginDisparityDiscrepancy"](margin=4.)(*logits)
    theirs.backward()
    _assert_same(ours, theirs)
    for a, b in zip(grads, _grads(*adversarial)):
        _assert_same(a, b)
    # tllib's needs equal batches; ours takes a class-balanced source of another size
    with pytest.raises(RuntimeError):
        tl["MarginDisparityDiscrepancy"]()(logits[0][:5], logits[1][:5], logits[2], logits[3])
    assert torch.isfinite(sa.MarginDisparityDiscrepancy()(logits[0][:5], logits[1][:5], logits[2], logits[3]))


def test_mdd_classifier(tl):
    backbone = sa.lenet()
    torch.manual_seed(0)
    ours = sa.MDDClassifier(copy.deepcopy(backbone), 3, bottleneck_dim=16, width=16, pool_layer=nn.Identity())
    torch.manual_seed(0)
    theirs = tl["MDDClassifier"](copy.deepcopy(backbone), 3, bottleneck_dim=16, width=16, pool_layer=nn.Identity())
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)   # same layout, same seeded draws
    x = torch.randn(5, 1, 28, 28)
    for net in (ours, theirs):
        net.eval()
    _assert_same(ours(x), theirs(x))
    assert [g["lr"] for g in ours.get_parameters(0.5)] == [g["lr"] for g in theirs.get_parameters(0.5)]
    for _ in range(3):
        ours.step()
        theirs.step()
    assert ours.grl_layer.iter_num == theirs.grl_layer.iter_num == 3


def test_bsp_loss_and_classifier(tl):
    torch.manual_seed(0)
    f_s, f_t = torch.randn(8, 5, requires_grad=True), torch.randn(7, 5, requires_grad=True)
    ours = sa.BatchSpectralPenalizationLoss()(f_s, f_t)
    ours.backward()
    grads = _grads(f_s, f_t)
    f_s.grad = f_t.grad = None
    theirs = tl["BatchSpectralPenalizationLoss"]()(f_s, f_t)
    theirs.backward()
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    for a, b in zip(grads, _grads(f_s, f_t)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    backbone = sa.lenet()
    assert list(sa.BSPClassifier(backbone, 3, 16, pool_layer=nn.Identity()).state_dict()) == \
        list(tl["BSPClassifier"](backbone, 3, 16, pool_layer=nn.Identity()).state_dict())


def test_tllibs_tsne_is_replaced_only_below_the_samples_it_takes(tl, monkeypatch, capsys, tmp_path):
    # tllib's t-SNE keeps a perplexity of 30: --phase analysis of a small run ended in scikit-learn's traceback
    monkeypatch.setattr(backend, "_chosen", ("tllib", tl, "tllib pieces: tllib"))
    few, many = torch.randn(6, 4), torch.randn(20, 4)
    with pytest.raises(ValueError, match="perplexity"):
        tl["tsne"].visualize(few, few, str(tmp_path / "tllib.pdf"))
    assert backend.for_samples("tsne", 31) is tl["tsne"] and capsys.readouterr().out == ""
    chosen = backend.for_samples("tsne", 12)
    assert chosen is sa.tsne and "tsne: the standalone one, as 12 samples are fewer than 31" in capsys.readouterr().out
    chosen.visualize(few, few, str(tmp_path / "few.pdf"))
    assert (tmp_path / "few.pdf").stat().st_size > 0
    assert backend.for_samples("tsne", 40) is tl["tsne"]
    tl["tsne"].visualize(many, many, str(tmp_path / "many.pdf"))
