"""--amp and --channels-last: the networks in bfloat16 / NHWC, every loss (ILA-DA's included) in float32."""
import re

import pytest
import torch
import torch.nn as nn

from helpers import make_image_list, only_log, run_script, tiny_args
from ila_cdan import CDAN
from ila_dann import DANN
from ila_tllib import ILALoss
from ila_tllib.engine import BatchPlan, Trainer, get_parser
from ila_tllib.engine.ila_term import ILATerm, build_ila_loss
from ila_tllib.engine.precision import prepare_modules
from ila_tllib.engine.run import build_classifier
from test_engine import toy_batch

CPU = torch.device("cpu")


class Recording(nn.Module):
    """Wraps a module and records, per call, whether autocast was on and the dtypes it received."""

    def __init__(self, module):
        super().__init__()
        self.module, self.calls = module, []

    def forward(self, *inputs, **kwargs):
        values = list(inputs) + [x for v in kwargs.values() for x in (v if isinstance(v, tuple) else (v,))]
        tensors = [x for x in values if torch.is_tensor(x)]
        self.calls.append((torch.is_autocast_enabled("cpu"), [x.dtype for x in tensors]))
        return self.module(*inputs, **kwargs)


def lenet_trainer(method, *flags):
    args = get_parser(method).parse_args(["root", "-s", "a", "-t", "b", "-a", "lenet", "--no-pool", "--scratch",
                                          "-b", "6", "--samples-per-class", "2", "--k", "2", "--mu", "0.5", *flags])
    torch.manual_seed(0)
    classifier = build_classifier(args, method, 3, CPU)
    plan = BatchPlan.from_args(args, 3)
    transfer = method.build_transfer(args, classifier, 3, plan.source_size, args.batch_size)
    prepare_modules(args, classifier, transfer, CPU)
    ila = ILATerm(Recording(build_ila_loss(args)), args.ila_trade_off)
    return Trainer(args, method, classifier, transfer, plan, ila, 3, CPU), classifier, transfer


def images(n, seed=0):
    return toy_batch(None, n, n, seed=seed)._replace(
        inputs=torch.randn(2 * n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("method", [DANN(), CDAN()], ids=["dann", "cdan"])
def test_amp_networks_in_bfloat16_losses_in_float32(method):
    # mining on the network itself, so that the oracle below can recompute ILA's decisions from its features
    trainer, classifier, transfer = lenet_trainer(method, "--amp", "--ila-mining-ema", "0")
    dtypes = {}

    def record(name, value):   # a hook must return None, or it replaces the module's inputs or output
        dtypes[name] = value

    classifier.backbone.register_forward_hook(lambda m, i, o: record("backbone", o.dtype))
    classifier.head.register_forward_hook(lambda m, i, o: record("head", o.dtype))
    first_linear = next(m for m in transfer.domain_discriminator.modules() if isinstance(m, nn.Linear))
    first_linear.register_forward_hook(lambda m, i, o: record("discriminator", o.dtype))
    transfer.register_forward_pre_hook(
        lambda m, i: record("adversarial loss", (torch.is_autocast_enabled("cpu"), i[0].dtype)))
    batch = images(6)
    torch.manual_seed(5)     # LeNet's dropout: the same masks in the training pass and in the oracle's below
    out = trainer.losses(batch, it=0)
    out.loss.backward()
    assert dtypes == {"backbone": torch.bfloat16, "head": torch.bfloat16, "discriminator": torch.bfloat16,
                      "adversarial loss": (False, torch.float32)}
    assert out.loss.dtype == out.cls_loss.dtype == out.ila_loss.dtype == torch.float32
    # ILA-DA's term: called outside autocast with float32 features ...
    assert trainer.ila.loss.calls == [(False, [torch.float32, torch.int64, torch.float32, torch.float32])]
    # ... and equal to the loss of the same (upcast) features computed without any autocast
    torch.manual_seed(5)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits, features = classifier(batch.inputs)
    expected = ILALoss(k=2, mu=0.5, similarity=trainer.args.similarity)(features[:6].float(), batch.labels_s,
                                                                      features[6:].float())
    assert expected.item() > 0 and out.ila_loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in classifier.parameters())


def test_amp_features_of_the_moving_average_reach_ila_in_float32():
    trainer, _, _ = lenet_trainer(CDAN(), "--amp")      # the default: ILA mines on a moving average
    out = trainer.losses(images(6), it=0)
    # f_s, y_s, f_t, logits_t, then the average's source and target features (bfloat16 networks)
    assert trainer.ila.loss.calls == [(False, [torch.float32, torch.int64, torch.float32, torch.float32,
                                               torch.float32, torch.float32])]
    assert out.ila_loss.dtype == torch.float32


def test_without_amp_everything_stays_float32():
    trainer, classifier, transfer = lenet_trainer(DANN())
    seen = []
    classifier.head.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    out = trainer.losses(images(6), it=0)
    assert seen == [torch.float32] and out.loss.dtype == torch.float32
    assert "forward" not in vars(transfer.domain_discriminator)     # nothing wrapped


def test_channels_last_model_and_inputs():
    trainer, classifier, _ = lenet_trainer(DANN(), "--channels-last")
    conv = next(m for m in classifier.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    layouts = []
    conv.register_forward_pre_hook(lambda m, i: layouts.append(i[0].is_contiguous(memory_format=torch.channels_last)))
    reference, _, _ = lenet_trainer(DANN())
    batch = images(6, seed=3)
    torch.manual_seed(1)    # LeNet's dropout: the same masks in both runs
    out = trainer.losses(batch, it=0)
    torch.manual_seed(1)
    expected = reference.losses(batch, it=0)
    assert layouts == [True]
    assert out.loss.item() == pytest.approx(expected.loss.item(), rel=1e-5)


def test_script_with_amp_and_channels_last(tmp_path):
    root = make_image_list(tmp_path / "data")
    log = str(tmp_path / "log")
    done = run_script("ila_cdan.py", tiny_args(root, log, "--seed", "0", "--amp", "--channels-last"))
    assert done.returncode == 0, done.stderr
    text = only_log(log, "train")
    assert "amp=True" in text and "channels_last=True" in text
    assert re.search(r"^test_acc1 = \d+\.\d$", text, re.M) and "ILA Loss" in text
