"""The training engine, checked against hand computations: the total loss of a step, tllib's schedule,
the batch plan, the ILA flags' effect and the logged diagnostics."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from ila_oracle import PHI, ila_oracle
from ila_tllib.engine import Batch, BatchPlan, Method, Trainer, check_args, get_parser, make_optimizer
from ila_tllib.engine.ila_term import ILAStats, ILATerm, build_ila_loss, build_ila_term, ratio_auc
from ila_tllib.engine.errors import DivergenceError, UsageError
from ila_tllib.engine.loop import load_schedule


class ToyMethod(Method):
    """A classifier of two linear maps and an adaptation term with a known value: mean(f_s) - mean(f_t)."""
    name = "toy"
    description = "a toy method"

    def build_classifier(self, args, backbone, num_classes, pool_layer):
        return ToyClassifier(num_classes)

    def build_transfer(self, args, classifier, num_classes, source_size, target_size):
        return nn.Identity()

    def param_groups(self, classifier, transfer):
        return [{"params": classifier.parameters(), "lr": 1.0}]

    def transfer_loss(self, args, transfer, source, target):
        value = source.features.mean() - target.features.mean()
        return args.trade_off * value, {"Trans Loss": value.item()}


class ToyClassifier(nn.Module):
    def __init__(self, num_classes, dim=4):
        super().__init__()
        torch.manual_seed(0)
        self.backbone, self.pool_layer = nn.Identity(), nn.Identity()     # the layout of tllib's classifiers
        self.bottleneck, self.head = nn.Linear(6, dim), nn.Linear(dim, num_classes)

    def forward(self, x):
        f = self.bottleneck(self.pool_layer(self.backbone(x)))
        return self.head(f), f


def toy_args(*extra):
    return get_parser(ToyMethod()).parse_args(["root", "-s", "a", "-t", "b", "-b", "6", *extra])


def toy_batch(plan, n_s, n_t, n_b=0, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_s + n_t + n_b, 6, generator=g, dtype=torch.float64)
    labels_s = torch.arange(n_s) % 3
    labels_b = torch.arange(n_b) % 3
    labels_t = torch.randint(0, 3, (n_t,), generator=g)
    ila = slice(n_s + n_t, n_s + n_t + n_b) if n_b else slice(0, n_s)
    return Batch(x, labels_s, labels_t, labels_b if n_b else labels_s, slice(0, n_s), slice(n_s, n_s + n_t), ila)


@pytest.mark.parametrize("mode", ["shared", "extra"])
def test_step_loss_is_ce_plus_weighted_transfer_plus_weighted_ila(mode):
    args = toy_args("--trade-off", "0.7", "--ila-trade-off", "1.3", "--k", "2", "--mu", "0.5", "--ila-batch", mode,
                    "--samples-per-class", "2")
    method = ToyMethod()
    classifier = ToyClassifier(3).double()
    plan = BatchPlan.from_args(args, 3)
    ila = ILATerm(build_ila_loss(args), args.ila_trade_off, start_iter=0)
    trainer = Trainer(args, method, classifier, nn.Identity(), plan, ila, 3, torch.device("cpu"))
    batch = toy_batch(plan, 6, 6, 6 if mode == "extra" else 0)
    out = trainer.losses(batch, it=0)

    # the same sum, from the pieces by hand and the plain-loop oracle of Eq. 4-7
    logits, f = classifier(batch.inputs)
    ce = F.cross_entropy(logits[:6], batch.labels_s)
    transfer = f[:6].mean() - f[6:12].mean()
    f_ila = f[12:18] if mode == "extra" else f[:6]
    similarity = PHI[args.similarity]
    ila_value = ila_oracle(f_ila.tolist(), batch.labels_ila.tolist(), f[6:12].tolist(), k=2, mu=0.5,
                           decide_phi=similarity, contrast_phi=similarity)[0]
    expected = ce.item() + 0.7 * transfer.item() + 1.3 * ila_value
    assert out.loss.item() == pytest.approx(expected, rel=1e-9)
    assert out.ila_loss.item() == pytest.approx(ila_value, rel=1e-9)
    # before --ila-start-iter the term is absent
    trainer.ila = ILATerm(build_ila_loss(args), args.ila_trade_off, start_iter=5)
    assert not trainer.ila_runs(4) and trainer.ila_runs(5)


def test_spectral_penalty_adds_beta_times_the_top_squared_singular_values():
    flags = ("--k", "2", "--mu", "0.5", "--samples-per-class", "2", "--ila-trade-off", "1.0")
    values = {}
    for beta in ("0", "0.05"):
        args = toy_args(*flags, "--ila-spectral-penalty", beta)
        classifier = ToyClassifier(3).double()
        plan = BatchPlan.from_args(args, 3)
        trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), plan, build_ila_term(args, 10), 3,
                          torch.device("cpu"))
        batch = toy_batch(plan, 6, 6, 6)
        values[beta] = trainer.losses(batch, it=0).loss.item()
    _, f = ToyClassifier(3).double()(batch.inputs)
    # oracle: the largest eigenvalue of F^T F is the largest squared singular value of F
    top = sum(torch.linalg.eigvalsh(part.T @ part)[-1].item() for part in (f[:6], f[6:12]))
    assert values["0.05"] - values["0"] == pytest.approx(0.05 * top, rel=1e-7, abs=1e-12)


def test_no_shrink_spectral_penalty_is_bsps_value_with_the_shrinking_part_of_its_gradient_removed():
    from ila_tllib.engine.ila_term import SPECTRAL_FORMS
    torch.manual_seed(4)
    f_s, f_t = torch.randn(7, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64) + 1.0
    grads = {}
    for form in ("bsp", "no-shrink"):
        a, b = f_s.clone().requires_grad_(), f_t.clone().requires_grad_()
        value = SPECTRAL_FORMS[form]()(a, b)
        value.backward()
        grads[form] = (value.item(), a.grad, b.grad)
    assert grads["no-shrink"][0] == pytest.approx(grads["bsp"][0], rel=1e-12)
    for f, index in ((f_s, 1), (f_t, 2)):
        # oracle, from the eigenvector of F^T F: d sigma_1^2 / dF = 2 F v v^T; its projection on F removed
        _, vectors = torch.linalg.eigh(f.T @ f)
        v = vectors[:, -1:]
        full = 2 * f @ v @ v.T
        radial = (full * f).sum() / (f * f).sum() * f
        torch.testing.assert_close(grads["bsp"][index], full, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(grads["no-shrink"][index], full - radial, rtol=1e-9, atol=1e-12)
        assert abs((grads["no-shrink"][index] * f).sum().item()) < 1e-9     # no component that scales F


@pytest.mark.parametrize("script, flags, form", [("ila_dann", [], "no-shrink"),
                                                ("ila_dann", ["--ila-trade-off", "0"], "bsp"),
                                                ("ila_dann", ["--ila-spectral-penalty", "0"], "bsp"),
                                                ("ila_bsp", [], "bsp"),
                                                ("ila_dann", ["--ila-spectral-form", "bsp"], "bsp"),
                                                ("ila_bsp", ["--ila-spectral-penalty", "1e-4"], "no-shrink")])
def test_spectral_form_default_is_no_shrink_where_the_penalty_runs(script, flags, form):
    # where no penalty runs (a baseline, beta 0, BSP's own loss) the log reads as one from before the flag
    module = __import__(script)
    method = {"ila_dann": "DANN", "ila_bsp": "BSP"}[script]
    args = get_parser(getattr(module, method)()).parse_args(["data", "-s", "A", "-t", "W", *flags])
    assert args.ila_spectral_form == form


def test_spectral_form_flag_reaches_the_trainer():
    flags = ("--k", "2", "--mu", "0.5", "--samples-per-class", "2", "--ila-trade-off", "1e-9",
             "--ila-spectral-penalty", "0.05")
    grads, values = {}, {}
    for form in ("bsp", "no-shrink"):
        args = toy_args(*flags, "--ila-spectral-form", form)
        torch.manual_seed(0)
        classifier = ToyClassifier(3).double()
        plan = BatchPlan.from_args(args, 3)
        trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), plan, build_ila_term(args, 10), 3,
                          torch.device("cpu"))
        torch.manual_seed(1)
        loss = trainer.losses(toy_batch(plan, 6, 6, 6), it=0).loss
        loss.backward()
        values[form] = loss.item()
        grads[form] = torch.cat([p.grad.flatten() for p in classifier.parameters() if p.grad is not None])
    assert values["no-shrink"] == pytest.approx(values["bsp"], rel=1e-12)
    assert not torch.allclose(grads["no-shrink"], grads["bsp"])


@pytest.mark.parametrize("schedule", ["constant", "term"])
def test_spectral_schedule_against_the_singular_values_and_the_ramp_by_hand(schedule):
    # beta (sigma_1(F_s)^2 + sigma_1(F_t)^2) from numpy's SVD, times 1 (constant) or the term's ramp: 0 before
    # iteration 5, then 2 / (1 + exp(-10 p)) - 1 with p = (it - 5) / (15 - 5); a factor of 0 gives no penalty
    g = torch.Generator().manual_seed(0)
    f_s, f_t = torch.randn(8, 4, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    spectral = sum(np.linalg.svd(f.numpy(), compute_uv=False)[0] ** 2 for f in (f_s, f_t))
    term = ILATerm(build_ila_loss(toy_args()), 1.0, start_iter=5, total_iters=15, schedule="ramp",
                   spectral_penalty=0.1, spectral_form="bsp", spectral_schedule=schedule)
    for it in (0, 4, 5, 10, 15):
        ramp = 0.0 if it < 5 else 2 / (1 + math.exp(-10 * (it - 5) / 10)) - 1
        factor = 1.0 if schedule == "constant" else ramp
        penalty = term.feature_penalty(f_s, f_t, it)
        if factor == 0:   # nothing to add: no penalty term at all, so no SVD on the step's path
            assert penalty is None
        else:
            assert penalty.item() == pytest.approx(0.1 * factor * spectral, rel=1e-10)


@pytest.mark.parametrize("domains", ["both", "source", "target"])
def test_spectral_domains_send_bsps_gradient_by_hand(domains):
    # the value is beta (sigma_1(F_s)^2 + sigma_1(F_t)^2) whichever domains; the gradient of sigma_1(F)^2 is
    # 2 sigma_1 u_1 v_1^T (numpy's SVD) for each domain named, 0 for the other
    g = torch.Generator().manual_seed(1)
    f_s = torch.randn(8, 4, generator=g, dtype=torch.float64, requires_grad=True)
    f_t = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    term = ILATerm(build_ila_loss(toy_args("--ila-spectral-domains", domains)), 1.0, spectral_penalty=0.1,
                   spectral_form="bsp", spectral_domains=domains)
    penalty = term.feature_penalty(f_s, f_t, 0)
    penalty.backward()
    for f, name in ((f_s, "source"), (f_t, "target")):
        u, sigma, vt = np.linalg.svd(f.detach().numpy(), full_matrices=False)
        assert penalty.item() >= 0.1 * sigma[0] ** 2
        named = domains in ("both", name)
        expected = 0.1 * 2 * sigma[0] * np.outer(u[:, 0], vt[0]) if named else np.zeros((len(f), 4))
        grad = np.zeros((len(f), 4)) if f.grad is None else f.grad.numpy()   # None: no gradient reached it
        np.testing.assert_allclose(grad, expected, atol=1e-10)
    value = sum(np.linalg.svd(f.detach().numpy(), compute_uv=False)[0] ** 2 for f in (f_s, f_t))
    assert penalty.item() == pytest.approx(0.1 * value, rel=1e-10)


def test_spectral_schedule_flag_reaches_the_trainer():
    # before --ila-start-iter, 'term' adds no penalty (the step loss of beta 0) and 'constant' adds it
    flags = ("--k", "2", "--mu", "0.5", "--samples-per-class", "2", "--ila-start-iter", "3")
    losses = {}
    for name, extra in (("none", ("--ila-spectral-penalty", "0")),
                        ("term", ("--ila-spectral-penalty", "0.05", "--ila-spectral-schedule", "term")),
                        ("constant", ("--ila-spectral-penalty", "0.05"))):
        args = toy_args(*flags, *extra)
        torch.manual_seed(0)
        classifier = ToyClassifier(3).double()
        plan = BatchPlan.from_args(args, 3)
        trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), plan, build_ila_term(args, 10), 3,
                          torch.device("cpu"))
        losses[name] = trainer.losses(toy_batch(plan, 6, 6, 6), it=0).loss.item()
    assert losses["term"] == losses["none"] and losses["constant"] > losses["none"]


@pytest.mark.parametrize("script, method, penalty, lr", [("ila_dann", "DANN", 2e-4, 0.01),
                                                         ("ila_cdan", "CDAN", 2e-4, 0.01),
                                                         ("ila_bsp", "BSP", 0.0, 0.003),
                                                         ("ila_mdd", "MDD", 0.0, 0.004)])
def test_a_method_sets_its_own_defaults_for_tllib_and_ila_flags(script, method, penalty, lr):
    method = getattr(__import__(script), method)()
    args = get_parser(method).parse_args(["root", "-s", "a", "-t", "b"])
    assert (args.ila_spectral_penalty, args.lr) == (penalty, lr)
    assert get_parser(method).parse_args(["root", "-s", "a", "-t", "b", "--ila-spectral-penalty", "1e-3"]
                                         ).ila_spectral_penalty == 1e-3     # the user's flag wins
    assert f"(default: {penalty:g};" in get_parser(method).format_help().replace("\n", " ").replace("  ", " ")


@pytest.mark.parametrize("extra, mining_ema", [([], 1e-6), (["--pseudo-label", "consensus"], 1e-6),
                                               (["--pseudo-label", "classifier"], 0.0),
                                               (["--ila-trade-off", "0"], 0.0), (["--ila-mining-ema", "0"], 0.0),
                                               (["--ila-mining-ema", "0.9"], 0.9)])
def test_ila_mines_on_a_moving_average_when_a_knn_vote_mines(extra, mining_ema):
    # the default depends on the labeller (only a kNN vote reads the average) and on ILA running at all (a
    # baseline logs 0, as runs from before the flag did); the parsed Namespace, the one logged, holds the value
    args = toy_args(*extra)
    assert args.ila_mining_ema == mining_ema
    trainer = Trainer(args, ToyMethod(), ToyClassifier(3), nn.Identity(), BatchPlan.from_args(args, 3),
                      build_ila_term(args, 10) if args.ila_trade_off > 0 else None, 3, torch.device("cpu"))
    average = trainer.ila.mining_network if trainer.ila is not None else None
    assert (average.decay if average is not None else 0.0) == mining_ema


@pytest.mark.parametrize("extra, terms", [([], "top-m"), (["--ila-ratio-terms", "matched"], "matched"),
                                          (["--pseudo-label", "consensus", "--ila-ratio-terms", "matched"], "matched")])
def test_the_ratio_terms_flag_reaches_the_knn_labeller(extra, terms):
    labeller = build_ila_term(toy_args(*extra), 10).miner.pseudo_labeller
    assert labeller.ratio_terms == terms


def test_a_namespace_from_another_parser_gets_the_derived_default():
    # e.g. a parser of the user's own built with add_ila_arguments: the flag is left at None until resolved
    args = toy_args()
    args.ila_mining_ema = None
    trainer = Trainer(args, ToyMethod(), ToyClassifier(3), nn.Identity(), BatchPlan.from_args(args, 3),
                      build_ila_term(args, 10), 3, torch.device("cpu"))
    assert args.ila_mining_ema == 1e-6 and trainer.ila.mining_network.decay == 1e-6


class ToyClassifierWithBackbone(nn.Module):
    """Train and evaluation mode differ (BatchNorm, dropout); the forward returns the features in both."""

    def __init__(self, num_classes, dim=4):
        super().__init__()
        torch.manual_seed(0)
        self.backbone = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Dropout(0.5))
        self.pool_layer, self.bottleneck, self.head = nn.Identity(), nn.Linear(5, dim), nn.Linear(dim, num_classes)

    def forward(self, x):
        f = self.bottleneck(self.backbone(x))
        return self.head(f), f


@pytest.mark.parametrize("with_dropout", [False, True], ids=["no-dropout", "dropout"])
def test_a_copy_that_does_not_lag_is_a_second_pass_of_the_current_weights(with_dropout):
    # --ila-mining-ema 1e-6: after a step the copy holds the network's weights; ILA mines on a second pass of
    # them. Without dropout that pass gives the network's own features; with dropout its own masks.
    args = toy_args("--ila-mining-ema", "1e-6", "--ila-mining-average", "network", "--samples-per-class", "2",
                    "--k", "2")
    classifier = ToyClassifierWithBackbone(3).double()
    if not with_dropout:
        classifier.backbone[3] = nn.Identity()
    trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), BatchPlan.from_args(args, 3),
                      build_ila_term(args, 10), 3, torch.device("cpu"))
    with torch.no_grad():
        for p in classifier.parameters():
            p.add_(0.5 * torch.randn_like(p))
    trainer.after_step()
    copied = dict(trainer.ila.mining_network.model.named_parameters())
    for name, p in classifier.named_parameters():
        assert torch.allclose(copied[name], p, rtol=0, atol=1e-5), name
    batch = toy_batch(BatchPlan.from_args(args, 3), 6, 6, 6)
    torch.manual_seed(5)
    own = trainer.method.forward(classifier, batch.inputs).features
    g_s, g_t = trainer.mining_features(batch)
    same = torch.allclose(g_t, own[batch.target].float(), atol=1e-5) and \
        torch.allclose(g_s, own[batch.ila].float(), atol=1e-5)
    assert same != with_dropout


@pytest.mark.parametrize("part", ["bottleneck", "network", "network-eval"])
def test_the_moving_average_ila_mines_on_is_of_the_part_the_flag_names(part):
    args = toy_args("--ila-mining-average", part, "--ila-mining-ema", "0.75", "--samples-per-class", "2", "--k", "2")
    classifier = ToyClassifierWithBackbone(3).double()
    plan = BatchPlan.from_args(args, 3)
    trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), plan, build_ila_term(args, 10), 3,
                      torch.device("cpu"))
    before = {name: p.detach().clone() for name, p in classifier.named_parameters()}
    classifier(torch.randn(8, 6, dtype=torch.float64))      # moves BatchNorm's running statistics
    with torch.no_grad():
        for p in classifier.parameters():
            p.add_(0.5 * torch.randn_like(p))
    trainer.after_step()
    # oracle: a copy of the network (its running statistics included) whose averaged parameters hold
    # 0.75 · before + 0.25 · now, by hand; the bottleneck average reads the network's own backbone
    averaged = copy.deepcopy(classifier)
    with torch.no_grad():
        for name, p in averaged.named_parameters():
            if part != "bottleneck" or name.startswith("bottleneck"):
                p.copy_(0.75 * before[name] + 0.25 * p)
    averaged.train(part != "network-eval")
    batch = toy_batch(plan, 6, 6, 6)
    torch.manual_seed(5)
    trainer.method.forward(classifier, batch.inputs)          # the step's own pass comes first
    torch.manual_seed(6)
    g_s, g_t = trainer.mining_features(batch)
    if part == "bottleneck":      # on the backbone features of the step's own pass, its dropout mask included
        torch.manual_seed(5)
        expected = averaged.bottleneck(classifier.backbone(batch.inputs))
    else:                         # a pass of its own: its own dropout masks (none in evaluation mode)
        torch.manual_seed(6)
        _, expected = averaged(batch.inputs)
    assert torch.allclose(g_s, expected[batch.ila].float(), atol=1e-6)
    assert torch.allclose(g_t, expected[batch.target].float(), atol=1e-6)
    assert len(list(trainer.ila.mining_network.model.parameters())) == (2 if part == "bottleneck" else 8)


def test_a_bottleneck_average_needs_a_bottleneck_with_weights():
    args = toy_args("--ila-mining-average", "bottleneck")
    classifier = ToyClassifierWithBackbone(3)
    classifier.bottleneck = nn.Identity()
    with pytest.raises(UsageError, match="needs a classifier whose `bottleneck` module has weights"):
        Trainer(args, ToyMethod(), classifier, nn.Identity(), BatchPlan.from_args(args, 3), build_ila_term(args, 10),
                3, torch.device("cpu"))


def test_target_labels_cannot_reach_training():
    args = toy_args("--k", "2", "--samples-per-class", "2")
    weights = []
    for permute in (False, True):
        classifier = ToyClassifier(3).double()
        plan = BatchPlan.from_args(args, 3)
        trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), plan,
                          ILATerm(build_ila_loss(args), 1.0), 3, torch.device("cpu"))
        optimizer, _ = make_optimizer(classifier.parameters(), args)
        batch = toy_batch(plan, 6, 6)
        if permute:
            batch = batch._replace(labels_t=(batch.labels_t + 1) % 3)
        for it in range(3):
            out = trainer.losses(batch, it)
            trainer.ila.log(out.ila_loss.item(), batch.labels_t)   # the labels reach the log only
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
        weights.append([p.detach().clone() for p in classifier.parameters()])
    for a, b in zip(*weights):
        assert torch.equal(a, b)


def test_tllib_learning_rate_schedule_and_groups():
    args = toy_args("--lr", "0.02", "--lr-gamma", "0.001", "--lr-decay", "0.75", "--momentum", "0.9", "--wd", "5e-4")
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    optimizer, scheduler = make_optimizer([{"params": a.parameters(), "lr": 0.1}, {"params": b.parameters(),
                                                                                  "lr": 1.0}], args)
    for _ in range(250):
        optimizer.step()
        scheduler.step()
    factor = 0.02 * (1 + 0.001 * 250) ** -0.75
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1 * factor, 1.0 * factor])
    assert all(g["nesterov"] and g["momentum"] == 0.9 and g["weight_decay"] == 5e-4 for g in optimizer.param_groups)


def test_a_resumed_schedule_follows_the_new_learning_rate_from_its_first_step():
    # the divergence message suggests --resume with a lower --lr: the saved rates predate it
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)

    def build(lr):
        return make_optimizer([{"params": a.parameters(), "lr": 0.1}, {"params": b.parameters(), "lr": 1.0}],
                              toy_args("--lr", str(lr), "--lr-gamma", "0.001", "--lr-decay", "0.75"))
    optimizer, scheduler = build(0.02)
    for _ in range(250):
        optimizer.step()
        scheduler.step()
    saved = copy.deepcopy((optimizer.state_dict(), scheduler.state_dict()))
    optimizer, scheduler = build(0.005)
    load_schedule(optimizer, scheduler, *saved)
    for step in (250, 251):
        factor = 0.005 * (1 + 0.001 * step) ** -0.75
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.1 * factor, 1.0 * factor])
        assert scheduler.get_last_lr() == pytest.approx([0.1 * factor, 1.0 * factor])
        optimizer.step()
        scheduler.step()


@pytest.mark.parametrize("flags, balanced_source, ila_batch, source_size", [
    (["--ila-trade-off", "0"], False, None, 6),
    (["--ila-trade-off", "0", "--balanced-source"], True, None, 9),
    ([], False, "extra", 6),                                    # the default
    (["--ila-batch", "shared"], True, "shared", 9),
    (["--samples-per-class", "0"], False, "shared", 6),           # no balanced batch: ILA reads tllib's
    (["--samples-per-class", "0", "--ila-batch", "shared"], False, "shared", 6),
    (["--classes-per-batch", "2", "--ila-batch", "shared"], True, "shared", 6),
])
def test_batch_plan_table(flags, balanced_source, ila_batch, source_size):
    args = toy_args("--samples-per-class", "3", *flags)
    plan = BatchPlan.from_args(args, 3)
    assert (plan.balanced_source, plan.ila_batch, plan.source_size) == (balanced_source, ila_batch, source_size)


def test_batch_plan_names_the_source_bank_only_where_ila_reads_it():
    random_rows = BatchPlan.from_args(toy_args("--samples-per-class", "0", "--ila-source-bank", "4"), 3)
    assert random_rows.describe() == ("batches: source random (6), target random (6); ILA reads the source batch, "
                                      "and its vote the 4 most recent source features of every class")
    anchors = BatchPlan.from_args(toy_args("--samples-per-class", "0", "--ila-source-bank", "4",
                                           "--ila-bank-anchors"), 3)
    assert anchors.describe().endswith("its vote and loss the 4 most recent source features of every class")
    off = BatchPlan.from_args(toy_args("--ila-source-bank", "4", "--ila-trade-off", "0"), 3)
    assert off.describe() == "batches: source random (6), target random (6)"


class FixedData:
    """A data source that hands out the same tensors; for the plan's draw()."""

    def __init__(self, x, y):
        self.batch = [x, y]

    def __next__(self):
        return self.batch


def test_batch_plan_draw_routes_each_part():
    args = toy_args("--samples-per-class", "1", "--ila-batch", "extra")
    plan = BatchPlan.from_args(args, 3)
    iters = {"source": FixedData(torch.zeros(6, 6), torch.zeros(6, dtype=torch.long)),
             "target": FixedData(torch.ones(6, 6), torch.ones(6, dtype=torch.long)),
             "ila_source": FixedData(torch.full((3, 6), 2.0), torch.arange(3))}
    batch = plan.draw(iters, torch.device("cpu"), with_ila=True)
    assert batch.inputs[batch.source].eq(0).all() and batch.inputs[batch.target].eq(1).all()
    assert batch.inputs[batch.ila].eq(2).all() and batch.labels_ila.tolist() == [0, 1, 2]
    assert batch.statistics_rows == 12                 # BatchNorm: tllib's source + target rows (default)
    assert plan.draw(iters, torch.device("cpu"), with_ila=False).inputs.shape[0] == 12   # no extra batch
    every_row = BatchPlan.from_args(toy_args("--samples-per-class", "1", "--ila-bn-statistics", "all"), 3)
    assert every_row.draw(iters, torch.device("cpu"), with_ila=True).statistics_rows is None
    shared = BatchPlan.from_args(toy_args("--samples-per-class", "1", "--ila-batch", "shared"), 3)
    assert shared.draw(iters, torch.device("cpu"), with_ila=True).statistics_rows is None   # no extra rows
    # the rule the step applies, as benchmarks and logs state it
    assert (plan.statistics_rule, every_row.statistics_rule, shared.statistics_rule) == ("tllib", "all", "all")
    assert shared.draw(iters, torch.device("cpu"), with_ila=False).ila is None     # before --ila-start-iter
    for layout in (shared, BatchPlan.from_args(toy_args("--samples-per-class", "0"), 3)):   # ILA reads -s's rows
        routed = layout.draw(iters, torch.device("cpu"), with_ila=True)
        assert routed.ila == routed.source and routed.labels_ila.tolist() == [0] * 6     # the source's labels
    with pytest.raises(ValueError, match="extra batch is missing"):
        plan.assemble(torch.zeros(6, 6), torch.zeros(6, dtype=torch.long), torch.ones(6, 6),
                      torch.ones(6, dtype=torch.long), with_ila=True)


@pytest.mark.parametrize("extra, largest_k", [(("--samples-per-class", "4"), 12),    # ILA's own 3 x 4, not -b 6
                                               (("--samples-per-class", "4", "--ila-batch", "shared"), 12),
                                               (("--samples-per-class", "0"), 6)])           # tllib's rows
def test_k_is_bounded_by_the_source_batch_ila_reads(extra, largest_k):
    plan = BatchPlan.from_args(toy_args(*extra), 3)
    plan.check(toy_args("--k", str(largest_k), *extra), 3)
    with pytest.raises(UsageError, match=f"--k {largest_k + 1} is larger than ILA's source batch \\({largest_k} "):
        plan.check(toy_args("--k", str(largest_k + 1), *extra), 3)


@pytest.mark.parametrize("schedule, s", [("linear", lambda p: p),
                                         ("ramp", lambda p: 2 / (1 + math.exp(-10 * p)) - 1)])
def test_the_keep_schedule_scales_mu_by_the_progress(schedule, s):
    # --ila-keep-schedule: the kept fraction is mu * s(p), p the progress after --ila-start-iter, never
    # compounded from one iteration's value to the next; before the start and at p = 0 nothing is kept
    from ila_tllib import ILALoss
    torch.manual_seed(0)
    f_s, y_s, f_t = torch.randn(12, 5), torch.arange(12) % 3, torch.randn(20, 5)
    term = ILATerm(ILALoss(k=1, mu=0.8), 1.0, start_iter=2, total_iters=12, keep_schedule=schedule)
    for it in (2, 7, 9, 7, 12, 40):
        term(f_s, y_s, f_t, None, 3, it)
        p = min(1.0, (it - 2) / 10)
        assert term.miner.mu == pytest.approx(max(0.8 * s(p), 1e-9), rel=1e-12), it
        assert int(term.loss.kept.sum()) == round(0.8 * s(p) * 20), it
    assert ILATerm(ILALoss(k=1, mu=0.8), 1.0, keep_schedule="step").keep_schedule is None   # mu as given


def test_each_batch_is_drawn_in_an_order_of_its_own():
    # the source, the target and ILA's own batch each have a seed of their own: with one seed, a source and a
    # target of the same size would be drawn in the same order, and ILA's batch would follow the source's
    import types
    from torch.utils.data import TensorDataset
    indices = torch.arange(60)
    domain = TensorDataset(indices.float().unsqueeze(1), indices % 3)
    domain.targets = (indices % 3).tolist()       # what the class-balanced sampler reads, as ImageList has
    data = types.SimpleNamespace(train_source=domain, train_target=domain, num_classes=3)
    for extra in ((), ("--ila-batch", "shared")):
        args = toy_args("-j", "0", "--samples-per-class", "2", *extra)
        plan = BatchPlan.from_args(args, 3)
        iters = plan.iterators(data, args, seed=0)
        drawn = {name: [next(iterator)[0].flatten().tolist() for _ in range(3)] for name, iterator in iters.items()}
        assert drawn["source"] != drawn["target"], extra
        if "ila_source" in drawn:
            assert all(sorted(int(x) % 3 for x in batch) == [0, 0, 1, 1, 2, 2] for batch in drawn["ila_source"])
            assert drawn["ila_source"] != [b[:6] for b in drawn["source"]]


@pytest.mark.parametrize("flag, value", [("--metric-loss", "triplet"), ("--similarity", "inverse_euclidean"),
                                         ("--pseudo-label", "classifier"), ("--ila-temperature", "0.5")])
def test_ila_flags_change_the_term(flag, value):
    torch.manual_seed(3)
    f_s, y_s, f_t = torch.randn(12, 5), torch.arange(12) % 4, torch.randn(10, 5)
    logits_t = torch.randn(10, 4)
    default = build_ila_loss(toy_args())(f_s, y_s, f_t, logits_t=logits_t, num_classes=4)
    changed = build_ila_loss(toy_args(flag, value))
    assert changed(f_s, y_s, f_t, logits_t=logits_t, num_classes=4).item() != pytest.approx(default.item())
    part = {"--metric-loss": changed.metric_loss, "--similarity": changed.similarity,
            "--pseudo-label": changed.miner.pseudo_labeller, "--ila-temperature": changed.metric_loss}[flag]
    expected = {"triplet": "AffinityTripletLoss", "inverse_euclidean": "InverseEuclideanSimilarity",
                "classifier": "ClassifierPseudoLabeller", "0.5": "MultiSampleContrastiveLoss"}[value]
    assert type(part).__name__ == expected
    if flag == "--ila-temperature":
        assert part.temperature == 0.5


@pytest.mark.parametrize("flags, similarity, mining", [([], "cosine", "cosine"),
                                                    (["--similarity", "inverse_euclidean"], "inverse_euclidean",
                                                     "inverse_euclidean"),
                                                    (["--similarity", "inverse_euclidean",
                                                      "--ila-mining-similarity", "cosine"], "inverse_euclidean",
                                                     "cosine"),
                                                    (["--ila-mining-similarity", "inverse_euclidean"], "cosine",
                                                     "inverse_euclidean")])
def test_the_mining_similarity_follows_the_similarity_unless_given(flags, similarity, mining):
    # the log's Namespace holds what the run does; the loss decides with one and contrasts with the other
    args = toy_args(*flags)
    assert (args.similarity, args.ila_mining_similarity) == (similarity, mining)
    loss = build_ila_loss(args)
    decides = loss.similarity if loss.mining_similarity is None else loss.mining_similarity
    names = {"cosine": "CosineSimilarity", "inverse_euclidean": "InverseEuclideanSimilarity"}
    assert (type(loss.similarity).__name__, type(decides).__name__) == (names[similarity], names[mining])


class Decisions:
    """What the ILA loss decided for one batch, built by hand."""

    def __init__(self, pseudo_labels, ratio, kept, affinity, num_anchors=1):
        self.pseudo_labels, self.ratio = torch.tensor(pseudo_labels), torch.tensor(ratio)
        self.kept, self.affinity = torch.tensor(kept), torch.tensor(affinity, dtype=torch.float)
        self.num_anchors = num_anchors


def test_logged_precision_auc_and_wrong_affinities_by_hand():
    # 4 targets, true labels 0 1 2 0; pseudo-labels 0 1 1 2: right, right, wrong, wrong
    decisions = Decisions([0, 1, 1, 2], [3.0, 1.0, 2.0, 0.5], [True, True, True, False],
                          [[1, -1, -1, 0], [-1, 1, 1, 0], [-1, 1, 1, 0]])
    stats = ILAStats()
    stats.update(decisions, 0.25, torch.tensor([0, 1, 2, 0]))
    assert stats.precision.avg == pytest.approx(100 * 2 / 3)        # kept: targets 0, 1, 2; 2 right
    assert stats.precision_all.avg == pytest.approx(50.0)
    # right scores {3, 1}, wrong {2, 0.5}: pairs right > wrong are (3,2) (3,0.5) (1,0.5) = 3 of 4
    assert stats.auc.avg == pytest.approx(0.75) == ratio_auc(decisions.ratio, torch.tensor([1, 1, 0, 0]).bool())
    # +1 entries: target 0 has 1, target 1 has 2, target 2 has 2 (wrong): 2 of 5 wrong
    assert stats.wrong_positive.avg == pytest.approx(40.0)
    assert "ratio AUC 0.75" in stats.summary()
    # ties count half: right {2, 1} against wrong {1, 2} is 1 + 1/2 + 1/2 + 0 of 4 pairs
    assert ratio_auc(torch.tensor([2.0, 1.0, 1.0, 2.0]), torch.tensor([1, 1, 0, 0]).bool()) == 0.5
    # a batch whose sources have no positive and negative both (no anchor) counts as one with nothing to contrast
    stats.update(Decisions([0, 1, 1, 2], [3.0, 1.0, 2.0, 0.5], [True, True, True, False],
                           [[1, -1, -1, 0], [-1, 1, 1, 0], [-1, 1, 1, 0]], num_anchors=0), 0.0,
                 torch.tensor([0, 1, 2, 0]))
    assert stats.summary().startswith("ILA: 1 of 2 batches had nothing to contrast;")


def test_the_epoch_summary_says_na_for_what_no_batch_measured(tmp_path):
    from helpers import load_benchmark
    epochs = load_benchmark("ila_diagnostics").epochs
    measured = ILAStats()
    measured.update(Decisions([0, 1, 1, 2], [3.0, 1.0, 2.0, 0.5], [True, True, True, False],
                              [[1, -1, -1, 0], [-1, 1, 1, 0], [-1, 1, 1, 0]]), 0.25, torch.tensor([0, 1, 2, 0]))
    # no kept target, so no +1 pair, and every pseudo-label right, so no ranking of right against wrong
    empty = ILAStats()
    empty.update(Decisions([0, 1], [1.0, 2.0], [False, False], [[0, 0], [0, 0]]), 0.0, torch.tensor([0, 1]))
    summary = empty.summary()
    assert "precision n/a kept / 100.0% all, ratio AUC n/a," in summary and "affinities n/a," in summary
    # the benchmarks' reader takes both lines: n/a as no value, not as 0
    log = tmp_path / "train-2026-01-01-00_00_00.txt"     # each epoch's summary ends its training lines
    log.write_text("Epoch: [0][ 0/4]\n" + measured.summary() + "\nEpoch: [1][ 0/4]\n" + summary + "\n")
    found = epochs(str(log))
    assert sorted(found) == [0, 1]
    first, second = found[0], found[1]
    assert first[:4] == pytest.approx((100 * 2 / 3, 50.0, 0.75, 40.0), abs=0.05)
    assert second[:5] == (None, 100.0, None, None, 0.0)


def test_the_progress_line_says_na_for_a_batch_without_the_value(capsys):
    # a batch with no kept target and only right pseudo-labels has no precision and no AUC: the progress line
    # showed the previous batch's value (or 0) as if measured; the averages stay over the batches that had one
    from ila_tllib import backend
    stats = ILAStats()
    stats.update(Decisions([0, 1, 1, 2], [3.0, 1.0, 2.0, 0.5], [True, True, True, False],
                           [[1, -1, -1, 0], [-1, 1, 1, 0], [-1, 1, 1, 0]]), 0.25, torch.tensor([0, 1, 2, 0]))
    backend.ProgressMeter(10, stats.meters(), prefix="Epoch: [0]").display(0)
    stats.update(Decisions([0, 1], [1.0, 2.0], [False, False], [[0, 0], [0, 0]]), 0.0, torch.tensor([0, 1]))
    backend.ProgressMeter(10, stats.meters(), prefix="Epoch: [0]").display(1)
    first, second = capsys.readouterr().out.splitlines()
    assert "\tPL Prec 66.7 (66.7)\t" in first and "\tRatio AUC 0.75 (0.75)\t" in first
    assert "\tPL Prec n/a (66.7)\t" in second and "\tRatio AUC  n/a (0.75)\t" in second, second
    assert stats.precision.avg == pytest.approx(100 * 2 / 3) and stats.auc.avg == pytest.approx(0.75)
    assert stats.wrong_positive.avg == pytest.approx(40.0)
    empty = ILAStats()
    empty.update(Decisions([0, 1], [1.0, 2.0], [False, False], [[0, 0], [0, 0]]), 0.0, torch.tensor([0, 1]))
    assert "Ratio AUC  n/a ( n/a)" in str(empty.auc) and str(empty.precision) == "PL Prec n/a (n/a)"


def test_ila_weight_is_lambda_times_schedule_times_reliability():
    from ila_tllib.engine.ila_term import ramp_schedule
    assert ramp_schedule(0.0) == 0.0 and ramp_schedule(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert ramp_schedule(0.1) == pytest.approx(2 / (1 + math.e ** -1) - 1)
    args = toy_args("--ila-trade-off", "2", "--ila-start-iter", "10", "--ila-schedule", "ramp",
                    "--ila-reliability", "agreement", "--k", "2", "--samples-per-class", "2")
    from ila_tllib.engine.ila_term import build_ila_term
    term = build_ila_term(args, total_iters=110)
    assert term.scheduled_weight(9) == 0.0 and term.scheduled_weight(10) == 0.0
    assert term.scheduled_weight(60) == pytest.approx(2 * (2 / (1 + math.exp(-5)) - 1))   # halfway
    torch.manual_seed(0)
    f_s, y_s, f_t = torch.randn(6, 4), torch.arange(6) % 3, torch.randn(8, 4)
    logits_t = torch.randn(8, 3)
    term(f_s, y_s, f_t, logits_t, 3, it=60)
    agreement = (term.loss.pseudo_labels == logits_t.argmax(1)).float().mean().item()
    assert term.last_weight == pytest.approx(term.scheduled_weight(60) * agreement)
    # the paper's step: lambda from the start iteration on, whatever the agreement
    step = build_ila_term(toy_args("--ila-trade-off", "2", "--k", "2", "--samples-per-class", "2",
                                   "--ila-schedule", "step"), 110)
    step(f_s, y_s, f_t, logits_t, 3, it=0)
    assert step.last_weight == 2.0


def test_ramp_anneal_rises_and_falls_back_to_zero_by_hand():
    # iterations 10..110 after --ila-start-iter 10: at a quarter (35) the ramp 2/(1+e^-2.5)-1 times
    # (1+cos(pi/4))/2, at half (60) the ramp 2/(1+e^-5)-1 times 1/2, at the end 0
    from ila_tllib.engine.ila_term import build_ila_term
    term = build_ila_term(toy_args("--ila-trade-off", "2", "--ila-start-iter", "10", "--ila-schedule", "ramp-anneal"),
                          total_iters=110)
    assert term.scheduled_weight(9) == 0.0 and term.scheduled_weight(10) == 0.0
    assert term.scheduled_weight(35) == pytest.approx(2 * (2 / (1 + math.exp(-2.5)) - 1) * (1 + math.sqrt(0.5)) / 2)
    assert term.scheduled_weight(60) == pytest.approx(2 * (2 / (1 + math.exp(-5)) - 1) / 2)
    assert term.scheduled_weight(110) == pytest.approx(0.0, abs=1e-12)
    weights = [term.scheduled_weight(it) for it in range(10, 111)]
    peak = weights.index(max(weights))
    assert 0 < peak < 100 and all(a <= b for a, b in zip(weights[:peak], weights[1:peak + 1]))
    assert all(a >= b for a, b in zip(weights[peak:], weights[peak + 1:]))


def test_the_kept_fraction_cannot_follow_a_schedule_that_falls_to_zero(capsys):
    # μ annealed to 0 would keep no target at the end: the flag offers only the schedules that grow
    with pytest.raises(SystemExit) as e:
        toy_args("--ila-keep-schedule", "ramp-anneal")
    assert e.value.code == 2 and "--ila-keep-schedule" in capsys.readouterr().err


class LabelledPoints(torch.utils.data.Dataset):
    """Points whose label is all a batch needs; ``targets`` lets the balanced sampler read the labels."""

    def __init__(self, targets):
        self.targets = list(targets)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return torch.tensor([float(i)]), self.targets[i]


def points_data(source_targets):
    """A run's data with these source labels (3 classes) and 24 targets."""
    return type("Data", (), {"train_source": LabelledPoints(source_targets),
                             "train_target": LabelledPoints([0] * 24), "num_classes": 3})()


@pytest.mark.parametrize("sampling", ["balanced", "random"])
def test_ila_own_batch_is_drawn_as_the_sampling_flag_says(sampling):
    # class 0 holds 20 of the 24 sources: a balanced batch takes 2 of every class; a random one of as many
    # rows (3 x 2) takes every source once per pass of 4 batches, so class 0 fills most rows
    targets = [0] * 20 + [1, 1, 2, 2]
    data = points_data(targets)
    args = toy_args("--samples-per-class", "2", "--ila-source-sampling", sampling, "-j", "0")
    plan = BatchPlan.from_args(args, 3)
    check_args(args, ToyMethod())
    ila_source = plan.iterators(data, args, seed=0)["ila_source"]
    batches = [next(ila_source) for _ in range(4)]
    assert all(len(labels) == 6 for _, labels in batches)
    counts = [torch.bincount(labels, minlength=3).tolist() for _, labels in batches]
    # ILA's rows are a draw of their own, not a slice of tllib's source batch (the same seed would give that)
    source_rows = {int(x) for x in next(plan.iterators(data, args, seed=0)["source"])[0].flatten()}
    assert {int(x) for x in batches[0][0].flatten()} != source_rows
    if sampling == "balanced":
        assert counts == [[2, 2, 2]] * 4
    else:
        rows = sorted(int(x) for points, _ in batches for x in points.flatten())
        assert rows == list(range(24))          # one pass: every source once
        assert [sum(c) for c in zip(*counts)] == [20, 2, 2]
    assert plan.describe().endswith("ILA's source batch " + ("class-balanced (3 classes x 2 = 6)"
                                                             if sampling == "balanced" else "random (6)"))


# batches.py's table, by hand (-b 4, 3 classes x 2): iterator -> (sampling, rows)
READS = {(): {"target": ("random", 4), "source": ("random", 4), "ila_source": ("balanced", 6)},
         ("--ila-trade-off", "0"): {"target": ("random", 4), "source": ("random", 4)},
         ("--ila-trade-off", "0", "--balanced-source"): {"target": ("random", 4), "source": ("balanced", 6)},
         ("--ila-source-sampling", "random"): {"target": ("random", 4), "source": ("random", 4),
                                               "ila_source": ("random", 6)},
         ("--ila-batch", "shared"): {"target": ("random", 4), "source": ("balanced", 6)},
         ("--samples-per-class", "0"): {"target": ("random", 4), "source": ("random", 4)}}


@pytest.mark.parametrize("flags", list(READS))
def test_what_an_iteration_reads_is_what_its_iterators_draw(flags):
    # BatchPlan.reads is what step_time.py times the engine's batches by: each iterator the run builds must
    # draw what it says (class 0 holds 20 of 24 sources, so a random batch is seldom balanced)
    args = toy_args("-b", "4", "--samples-per-class", "2", "-j", "0", *flags)
    plan = BatchPlan.from_args(args, 3)
    assert plan.reads() == READS[flags]
    iters = plan.iterators(points_data([0] * 20 + [1, 1, 2, 2]), args, seed=0)
    assert set(iters) == set(READS[flags])
    for name, (sampling, rows) in READS[flags].items():
        counts = [torch.bincount(next(iters[name])[1], minlength=3).tolist() for _ in range(4)]
        assert all(sum(c) == rows for c in counts), name
        assert (counts == [[2, 2, 2]] * 4) == (sampling == "balanced"), (name, counts)


@pytest.mark.parametrize("flags", [["--ila-batch", "shared"], ["--samples-per-class", "0"], ["--ila-trade-off", "0"]])
def test_random_sampling_of_ila_own_batch_needs_that_batch(flags):
    args = toy_args("--ila-source-sampling", "random", *flags)
    with pytest.raises(UsageError, match=r"--ila-source-sampling random draws ILA's own source batch, and there "
                                         r"is none here"):
        check_args(args, ToyMethod())


def test_a_random_ila_batch_larger_than_the_source_names_its_flags():
    data = points_data([0, 1, 2] * 8)
    args = toy_args("--samples-per-class", "10", "--ila-source-sampling", "random", "-j", "0")
    with pytest.raises(UsageError, match=r"fewer than the batch size 30: lower --samples-per-class "
                                         r"\(x --classes-per-batch\)"):
        BatchPlan.from_args(args, 3).iterators(data, args, seed=0)


def test_a_non_finite_adaptation_term_is_named_the_transfer_loss():
    # tllib's name for a method's term, whatever the method (the default's "adversarial" misnamed MCC's)
    class NaNMethod(ToyMethod):
        def transfer_loss(self, args, transfer, source, target):
            return source.features.sum() * float("nan"), {}
    args = toy_args("--ila-trade-off", "0")
    trainer = Trainer(args, NaNMethod(), ToyClassifier(3), nn.Identity(), BatchPlan.from_args(args, 3), None, 3,
                      torch.device("cpu"))
    batch = toy_batch(None, 4, 4)
    with pytest.raises(DivergenceError, match=r"^the transfer loss became nan at iteration 7; training stopped"):
        trainer.losses(batch._replace(inputs=batch.inputs.float()), 7)


class _WorkerSignalMask(torch.utils.data.Dataset):
    """Each item: whether SIGINT is blocked in the process that loads it."""

    def __len__(self):
        return 2

    def __getitem__(self, index):
        import signal
        return torch.tensor(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_loader_workers_start_with_ctrl_c_held_back():
    # a Ctrl-C landing while DataLoader workers forked killed one mid-start (exit 1, "worker exited
    # unexpectedly") or was lost in the fork's handlers (the run went on): the engine's loaders start their
    # workers with SIGINT blocked, which the workers keep; the main process takes it once they have started
    import signal
    from ila_tllib.engine.data import Loader
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    assert signal.SIGINT not in before
    assert [bool(b) for b in Loader(_WorkerSignalMask(), batch_size=1, num_workers=1)] == [True, True]
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before          # the main process's mask is back
    # with no workers nothing is held back; a plain DataLoader's workers take Ctrl-C (what the engine avoids)
    assert [bool(b) for b in Loader(_WorkerSignalMask(), batch_size=1, num_workers=0)] == [False, False]
    assert [bool(b) for b in torch.utils.data.DataLoader(_WorkerSignalMask(), batch_size=1, num_workers=1)] == \
        [False, False]


def test_a_method_must_name_itself():
    # Method had DANN's name and description: a method of one's own that forgot its name logged into dann/
    # and python -m ila_tllib.tables filed its runs as DANN's
    class Unnamed(Method):
        description = "a method without a name"
    with pytest.raises(TypeError, match="Unnamed sets no name:"):
        get_parser(Unnamed())
    with pytest.raises(TypeError, match="sets no name and no description"):
        get_parser(Method())
    assert get_parser(ToyMethod()).parse_args(["root"]).log == "toy"


def test_an_ila_summary_line_as_the_logs_hold_it_is_read():
    # a literal line of a committed log: the format and its reader live together, and the logs' wording stays
    from ila_tllib.logged_flags import read_ila_summary
    line = ("ILA: 10 of 300 batches had nothing to contrast; pseudo-label precision 24.6% kept / 21.0% all, ratio "
            "AUC 0.73, kept 48.0 targets per batch, wrong +1 affinities n/a, weight 0.507\n")
    assert read_ila_summary(line) == {"empty": 10, "batches": 300, "precision_kept": 24.6, "precision_all": 21.0,
                                      "auc": 0.73, "kept": 48.0, "wrong_positive": None, "weight": 0.507}
    assert read_ila_summary("ILA: mining on the network's features (no moving average)\n") is None
