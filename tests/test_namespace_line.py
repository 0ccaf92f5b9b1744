"""The log's first line, ``Namespace(...)``: tllib's flags in the order and under the names tllib's own
dann.py, cdan.py, mdd.py and bsp.py print them (their argparse order, read from thuml's scripts); the
flags this package adds may sit anywhere between them."""
import ast
import os
import re
import subprocess
import sys

import pytest

import ila_bsp
import ila_cdan
import ila_dann
import ila_mdd
from ila_tllib.engine import get_parser

from helpers import SCRIPTS

_DATA = ["root", "data", "source", "target", "train_resizing", "val_resizing", "resize_size", "scale", "ratio",
         "no_hflip", "norm_mean", "norm_std"]
_TRAINING = ["batch_size", "lr", "lr_gamma", "lr_decay", "momentum", "weight_decay", "workers", "epochs",
             "iters_per_epoch", "print_freq", "seed", "per_class_eval", "log", "phase"]
TLLIB_ORDER = {
    "dann": _DATA + ["arch", "bottleneck_dim", "no_pool", "scratch", "trade_off"] + _TRAINING,
    "cdan": _DATA + ["arch", "bottleneck_dim", "no_pool", "scratch", "randomized", "randomized_dim", "entropy",
                     "trade_off"] + _TRAINING,
    "mdd": _DATA + ["arch", "bottleneck_dim", "no_pool", "scratch", "margin", "trade_off"]
    + [("wd" if name == "weight_decay" else name) for name in _TRAINING],
    "bsp": ["root", "data", "source", "target", "train_resizing", "val_resizing", "scale", "ratio", "resize_size",
            "no_hflip", "norm_mean", "norm_std", "arch", "pretrain", "bottleneck_dim", "no_pool", "scratch",
            "trade_off", "trade_off_bsp", "batch_size", "lr", "pretrain_lr", "lr_gamma", "lr_decay", "momentum",
            "weight_decay", "workers", "epochs", "pretrain_epochs", "iters_per_epoch", "print_freq", "seed",
            "per_class_eval", "log", "phase"],
}


@pytest.mark.parametrize("method", [ila_dann.DANN(), ila_cdan.CDAN(), ila_mdd.MDD(), ila_bsp.BSP()],
                         ids=lambda m: m.name)
def test_tllibs_flags_print_in_tllibs_order_and_names(method):
    args = get_parser(method).parse_args(["data/office31", "-s", "A", "-t", "W", "--lr", "0.02"])
    line = method.namespace_line(args)
    printed = {keyword.arg: ast.literal_eval(keyword.value) for keyword in ast.parse(line, mode="eval").body.keywords}
    tllib = TLLIB_ORDER[method.name]
    assert [name for name in printed if name in tllib] == tllib
    # every flag once, with its value: only the order and the names changed
    assert printed == {method.namespace_names.get(k, k): v for k, v in vars(args).items()}
    assert printed["lr"] == 0.02 and printed["source"] == ["A"]


@pytest.mark.parametrize("method", [ila_dann.DANN(), ila_cdan.CDAN(), ila_mdd.MDD(), ila_bsp.BSP()],
                         ids=lambda m: m.name)
def test_help_lists_tllibs_flags_in_tllibs_order(method):
    # `--help` as a user reads it: the options' lines in order, each named by its first long flag
    done = subprocess.run([sys.executable, os.path.join(SCRIPTS, f"ila_{method.name}.py"), "--help"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    options = re.split(r"\n(?:options|optional arguments):\n", done.stdout)[1]   # Python 3.10 says the latter
    listed = [re.search(r"--([\w-]+)", line).group(1).replace("-", "_")
              for line in options.splitlines() if line.startswith("  -")]
    engine_name = {v: k for k, v in method.namespace_names.items()}
    tllib = [engine_name.get(name, name) for name in TLLIB_ORDER[method.name] if name != "root"]
    listed = ["weight_decay" if name == "wd" else name for name in listed]   # --wd W, --weight-decay W
    assert [name for name in listed if name in tllib] == tllib


@pytest.mark.parametrize("method, weight_decay", [(ila_dann.DANN(), "0.001"), (ila_cdan.CDAN(), "0.001"),
                                                  (ila_mdd.MDD(), "0.0005"), (ila_bsp.BSP(), "0.001")],
                         ids=lambda m: getattr(m, "name", ""))
def test_help_gives_the_method_s_own_defaults_where_tllib_s_help_gives_one(method, weight_decay):
    # tllib's help says "(default: 1e-3)" for --wd and "(default: 2)" for -j; here each method's own value,
    # the one its tllib script trains with (mdd.py: 5e-4)
    text = " ".join(get_parser(method).format_help().split())
    assert f"weight decay (default: {weight_decay})" in text
    assert "number of data loading workers (default: 2)" in text


def test_help_gives_the_defaults_a_method_sets():
    # a method of one's own with tllib's mcc.py defaults: its help says them
    class Mine(ila_dann.DANN):
        defaults = dict(batch_size=36, lr=0.005, k=3)
    text = " ".join(get_parser(Mine()).format_help().split())
    assert "mini-batch size (default: 36)" in text and "kNN pseudo-label vote (default: 3)" in text


def test_help_says_what_each_choice_of_an_ila_flag_does():
    # the choices come from the parts' tables; their descriptions are written in the help: a part added to a
    # table must be described there too (a flag sharing another's table, --ila-mining-similarity, names it)
    parser = get_parser(ila_cdan.CDAN())
    group = next(g for g in parser._action_groups if g.title == "ILA-DA")
    flags = {a.option_strings[0]: a for a in group._group_actions}
    for flag, action in flags.items():
        if not action.choices:
            continue
        described_by = next((other for other in flags if other != flag and other in action.help
                             and list(flags[other].choices or []) == list(action.choices)), flag)
        text = " ".join(flags[described_by].help.split())
        named = [c for c in action.choices if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", text)]
        assert named == list(action.choices), (flag, described_by)
