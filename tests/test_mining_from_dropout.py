"""--ila-mining-average from-dropout (the default): the second pass ILA mines on starts at the network's
first dropout layer, on that layer's input from the network's own pass. Checked against the whole-network
copy (``network``), which runs every layer again, and against hand-built expectations."""
import argparse

import pytest
import torch
import torch.nn as nn

from ila_dann import DANN
from ila_mdd import MDD
from ila_tllib.engine import BatchPlan, Trainer, get_parser
from ila_tllib.engine.ila_term import build_ila_term
from ila_tllib.engine.moving_average import is_stochastic, layers_in_order
from test_engine import ToyClassifierWithBackbone, ToyMethod, toy_args, toy_batch
from test_precision import images, lenet_trainer

CPU = torch.device("cpu")


def perturb(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


def test_on_lenet_it_mines_on_the_same_features_as_a_second_pass_of_the_whole_network():
    # LeNet: Conv, MaxPool, ReLU, Conv, Dropout2d, ... With the default decay both copies hold the current
    # weights; with the same random state both draw the same dropout masks, so the features must agree,
    # although the default never runs the two convolutions again
    trainer, classifier, transfer = lenet_trainer(DANN(), "--ila-mining-ema", "1e-6")
    whole_args = argparse.Namespace(**{**vars(trainer.args), "ila_mining_average": "network"})
    whole = Trainer(whole_args, trainer.method, classifier, transfer, trainer.plan, build_ila_term(whole_args, 10),
                    3, CPU)
    assert trainer.args.ila_mining_average == "from-dropout"
    perturb(classifier)
    trainer.after_step()
    whole.after_step()
    batch = images(6, seed=2)
    torch.manual_seed(5)
    own = trainer.method.forward(classifier, batch.inputs).features
    state = torch.get_rng_state()
    g_s, g_t = trainer.mining_features(batch)
    torch.set_rng_state(state)
    w_s, w_t = whole.mining_features(batch)
    assert torch.allclose(g_s, w_s, atol=1e-5) and torch.allclose(g_t, w_t, atol=1e-5)
    assert not torch.allclose(g_t, own[batch.target], atol=1e-3)       # its own dropout masks
    copied = trainer.ila.mining_network.model
    assert isinstance(copied[0], nn.Dropout2d)                           # the copy starts at the dropout ...
    assert not any(isinstance(m, nn.Conv2d) for m in copied.modules())   # ... and holds no convolution
    assert "Dropout2d, layer 5 of" in trainer.ila.mining_network.describe()


def test_without_dropout_it_mines_on_the_network_own_features_and_runs_no_layer():
    args = toy_args("--ila-mining-ema", "1e-6", "--samples-per-class", "2", "--k", "2")
    classifier = ToyClassifierWithBackbone(3).double()
    classifier.backbone[3] = nn.Identity()
    trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), BatchPlan.from_args(args, 3),
                      build_ila_term(args, 10), 3, CPU)
    calls = []
    for layer in classifier.modules():
        layer.register_forward_hook(lambda m, i, o: calls.append(m))
    batch = toy_batch(BatchPlan.from_args(args, 3), 6, 6, 6)
    own = trainer.method.forward(classifier, batch.inputs).features
    calls.clear()
    g_s, g_t = trainer.mining_features(batch)
    assert calls == [] and list(trainer.ila.mining_network.model.parameters()) == []
    assert torch.equal(g_s, own[batch.ila].float()) and torch.equal(g_t, own[batch.target].float())
    assert "no dropout" in trainer.ila.mining_network.describe()


def test_a_lagging_average_from_dropout_averages_only_the_layers_after_it():
    # decay 0.75: the layers from the dropout on (here the bottleneck) hold 0.75 * before + 0.25 * now, by hand;
    # the layers before it are the network's own pass, and the dropout draws a mask of its own
    args = toy_args("--ila-mining-average", "from-dropout", "--ila-mining-ema", "0.75", "--samples-per-class", "2",
                    "--k", "2")
    classifier = ToyClassifierWithBackbone(3).double()
    plan = BatchPlan.from_args(args, 3)
    trainer = Trainer(args, ToyMethod(), classifier, nn.Identity(), plan, build_ila_term(args, 10), 3, CPU)
    before = {name: p.detach().clone() for name, p in classifier.bottleneck.named_parameters()}
    perturb(classifier)
    trainer.after_step()
    batch = toy_batch(plan, 6, 6, 6)
    torch.manual_seed(5)
    trainer.method.forward(classifier, batch.inputs)
    torch.manual_seed(6)
    g_s, g_t = trainer.mining_features(batch)
    with torch.no_grad():
        averaged = nn.Linear(5, 4).double()
        for name, p in averaged.named_parameters():
            p.copy_(0.75 * before[name] + 0.25 * getattr(classifier.bottleneck, name))
        prefix = classifier.backbone[:3](batch.inputs)      # Linear, BatchNorm (batch statistics), Tanh
        torch.manual_seed(6)
        expected = averaged(classifier.backbone[3](prefix))
    assert torch.allclose(g_s, expected[batch.ila].float(), atol=1e-6)
    assert torch.allclose(g_t, expected[batch.target].float(), atol=1e-6)


def test_the_layer_walk_opens_sequentials_and_finds_dropout_with_a_positive_rate():
    class Block(nn.Sequential):       # a forward of its own: one layer, not opened
        def forward(self, x):
            return super().forward(x) * 2

    chain = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.0)), Block(nn.Dropout(0.3)), nn.ReLU())
    layers = layers_in_order(chain)
    assert [type(m).__name__ for m in layers] == ["Linear", "Dropout", "Block", "ReLU"]
    assert [is_stochastic(m) for m in layers] == [False, False, True, False]


@pytest.mark.parametrize("average", ["from-dropout", "bottleneck", "network"])
@pytest.mark.parametrize("choice", ["bottleneck", "before-dropout"])
def test_mdd_features_before_its_last_dropout(choice, average):
    # MDD's bottleneck ends in Dropout(0.5), whose output the heads read: in training mode each of its
    # coordinates is 0 or twice its input. With before-dropout ILA reads that input, and the second pass
    # it mines on stops before the same layer, whichever part the average copies; by default it reads the
    # heads' input itself
    trainer, classifier, _ = lenet_trainer(MDD(), "--ila-features", choice, "--ila-mining-average", average)
    heads_input = []
    classifier.head.register_forward_pre_hook(lambda m, inputs: heads_input.append(inputs[0]))
    batch = images(6, seed=3)
    features = trainer.method.forward(classifier, batch.inputs).features
    masked = heads_input[0]
    if choice == "bottleneck":
        assert torch.equal(features, masked)
    else:
        zeroed = masked == 0
        assert 0.3 < zeroed[features > 0].float().mean() < 0.7                 # about half masked at random
        assert torch.allclose(masked[~zeroed], 2 * features[~zeroed])
        assert (features > 0).float().mean() > 0.3 and not torch.equal(features, masked)
    if average != "network":      # a copy of the layers up to the features, which end at the dropout or before it
        last = layers_in_order(trainer.ila.mining_network.model)[-1]
        assert isinstance(last, nn.Dropout) == (choice == "bottleneck")
    g_s, g_t = trainer.mining_features(batch)
    # after the ReLU about half the coordinates are 0; the dropout zeroes half the rest
    assert ((g_t == 0).float().mean() > 0.65) == (choice == "bottleneck")


@pytest.mark.parametrize("ila_trade_off, said", [("1", True), ("0", False)])
def test_mdd_ila_features_is_an_ila_flag(capsys, ila_trade_off, said):
    # listed in --help's ILA-DA group, and said in the log only when ILA runs
    parser = get_parser(MDD())
    group = next(g for g in parser._action_groups if g.title == "ILA-DA")
    assert "ila_features" in [a.dest for a in group._group_actions]
    capsys.readouterr()
    lenet_trainer(MDD(), "--ila-features", "before-dropout", "--ila-trade-off", ila_trade_off)
    assert ("ILA reads:" in capsys.readouterr().out) == said


def test_the_affinity_figure_reads_mdd_s_head_without_its_dropout():
    # MDD's head holds Dropout(0.5): the figure's classifier pseudo-labels and confidences must be those of
    # the network in evaluation mode, the same whatever the random state (oracle: the head in eval mode)
    from ila_tllib.engine.analysis import batch_affinity
    trainer, classifier, _ = lenet_trainer(MDD(), "--pseudo-label", "classifier")
    assert any(isinstance(m, nn.Dropout) for m in classifier.head.modules())
    batch = images(6, seed=4)
    x_s, x_t, y_s = batch.inputs[batch.source], batch.inputs[batch.target], batch.labels_s
    scores = []
    for seed in (1, 2):
        classifier.train()
        torch.manual_seed(seed)
        scores.append(batch_affinity(classifier, MDD(), trainer.args, x_s, y_s, x_t, 3).ratio)
    assert torch.equal(scores[0], scores[1])
    with torch.no_grad():
        expected = classifier.head(MDD().feature_extractor(classifier)(x_t)).softmax(1).max(1).values
    assert torch.allclose(scores[0], expected)
