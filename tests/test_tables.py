"""python -m ila_tllib.tables over tllib's own logs next to ours: one row per method and variant, named
as tllib names them. tllib's logs are written here in the format its scripts print (its argparse
Namespace first, test_acc1 last) under its layout logs/<method>/<Task>/."""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from ila_tllib.engine.flags import FLAGS_ADDED_LATER
from ila_tllib.run_logs import collect
from ila_tllib.tables import format_paired_table, format_table

from helpers import REPO, env_without_torch

# the flags of tllib's cdan.py and mcc.py (examples/domain_adaptation/image_classification), their defaults
TLLIB_COMMON = dict(data="Office31", train_resizing="default", val_resizing="default", resize_size=224, no_hflip=False,
                    norm_mean=(0.485, 0.456, 0.406), norm_std=(0.229, 0.224, 0.225), arch="resnet50",
                    bottleneck_dim=256, no_pool=False, scratch=False)
TLLIB_TRAINING = dict(lr_gamma=0.001, lr_decay=0.75, momentum=0.9, weight_decay=0.001, workers=2, epochs=20,
                      iters_per_epoch=1000, print_freq=100, per_class_eval=False, phase="train")
TLLIB_FLAGS = {
    "cdan": dict(randomized=False, randomized_dim=1024, entropy=False, trade_off=1.0, batch_size=32, lr=0.01),
    "dann": dict(trade_off=1.0, batch_size=32, lr=0.01),
    "mcc": dict(temperature=2.5, trade_off=1.0, batch_size=36, lr=0.005),
    "erm": dict(batch_size=32, lr=0.001),
}


def _write_log(folder, namespace, acc, stamp="2024-03-01-10_00_00", method=None, history=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "train-{}.txt".format(stamp)), "w") as f:
        f.write(repr(namespace) + "\n")
        if method is not None:   # this package's scripts say which method they run
            f.write("method: {}\ntllib pieces: none\n".format(method))
        if history is not None:   # a run resumed with other values of --lr ...
            f.write("=> resumed from x: epoch 1, iteration 10, best_acc1 50.0\n")
            f.write("flags over the run: {}\n".format(history))
        f.write("train_transform:  Compose(\n    ResizeImage(size=(256, 256))\n)\n")
        f.write("Epoch: [0][   0/1000]\tTime 1.2 (1.2)\tData 0.0 (0.0)\tLoss 3.50 (3.50)\tCls Acc 3.1 (3.1)\n")
        f.write(" * Acc@1 {:.3f}\nbest_acc1 = {:.1f}\ntest_acc1 = {:.1f}\n".format(acc, acc, acc))


def tllib_log(logs, method, source, target, seed, acc):
    task = "Office31_{}2{}".format(source, target)
    namespace = argparse.Namespace(root="data/office31", source=[source], target=[target], seed=seed,
                                   log="logs/{}/{}".format(method, task), **TLLIB_COMMON, **TLLIB_FLAGS[method],
                                   **TLLIB_TRAINING)
    _write_log(os.path.join(logs, method, task + ("" if seed == 0 else "_seed{}".format(seed))), namespace, acc)


def our_log(logs, folder, source, target, acc, *flags, seed=0, method=None, history=None):
    from ila_cdan import CDAN
    from ila_tllib.engine import get_parser
    task = "Office31_{}2{}".format(source, target)
    log = os.path.join(logs, folder, task + ("" if seed == 0 else "_seed{}".format(seed)))
    seeded = ["--seed", str(seed)] if seed is not None else []      # None: a run without --seed
    namespace = get_parser(CDAN()).parse_args(["data/office31", "-s", source, "-t", target, "-a", "resnet50",
                                                *seeded, "--log", log, *flags])
    _write_log(log, namespace, acc, method=method, history=history)


def _rows(table):
    """The table's rows by name (the lines after the header, up to the notes below it)."""
    return {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.split("\n\n")[0].splitlines()[2:]}


def test_tllibs_logs_and_ours_share_one_table(tmp_path):
    logs = str(tmp_path / "logs")
    for seed, (aw, dw) in enumerate([(94.0, 98.4), (94.2, 98.6)]):
        tllib_log(logs, "mcc", "A", "W", seed, aw)
        tllib_log(logs, "mcc", "D", "W", seed, dw)
    tllib_log(logs, "cdan", "A", "W", 0, 93.8)
    tllib_log(logs, "cdan", "D", "W", 0, 98.5)
    tllib_log(logs, "dann", "A", "W", 0, 91.4)
    tllib_log(logs, "erm", "A", "W", 0, 75.8)
    our_log(logs, "ila_cdan", "A", "W", 95.0)
    our_log(logs, "ila_cdan", "D", "W", 99.0)
    our_log(logs, "ila_cdan_baseline", "D", "W", 98.1, "--ila-trade-off", "0")   # tllib's recipe, run by ours
    table = format_table(collect([logs]))
    rows = _rows(table)
    assert list(rows) == ["ERM", "DANN", "CDAN", "ILA-DA+CDAN", "MCC"]    # tllib's order, ILA-DA next to its base
    assert rows["MCC"][1:5] == ["89.4", "96.3 ± 0.1", "94.1 ± 0.1", "98.5 ± 0.1"]
    # our CDAN baseline joins tllib's CDAN row: flags tllib's Namespace lacks split nothing; its seed 0 and
    # tllib's are one seed, counted once at their mean (98.5 and 98.1), and named below the table
    assert rows["CDAN"][1] == "87.7" and rows["CDAN"][3:6] == ["93.8", "98.3", "1/1 |"]
    assert table.endswith("\n\nseeds with more than one run, each counted once at the mean of its runs: "
                          "CDAN, D→W, seed 0 (98.5 and 98.1)")
    assert rows["ILA-DA+CDAN"][1:5] == ["89.3", "97.0", "95.0", "99.0"]
    assert rows["DANN"][1] == "82.2" and rows["DANN"][4:6] == ["-", "1/0 |"]


def test_weights_split_rows_only_where_they_differ(tmp_path):
    logs = str(tmp_path / "logs")
    tllib_log(logs, "cdan", "A", "W", 0, 93.8)                       # tllib loads the V1 weights
    our_log(logs, "v1", "A", "W", 93.0, "--ila-trade-off", "0")
    our_log(logs, "v2", "A", "W", 95.0, "--ila-trade-off", "0", "--weights", "default")
    rows = _rows(format_table(collect([logs])))
    assert set(rows) == {"CDAN (weights=v1)", "CDAN (weights=default)"}
    assert rows["CDAN (weights=v1)"][2] == "93.4" and rows["CDAN (weights=default)"][2] == "95.0"   # one seed


def test_a_flag_typed_as_its_default_shares_the_row_and_another_value_splits_it(tmp_path):
    # argparse keeps a list flag's default as a tuple and gives a list where it is typed
    logs = str(tmp_path / "logs")
    our_log(logs, "default", "A", "W", 94.0)
    our_log(logs, "typed", "A", "W", 96.0, "--norm-mean", "0.485", "0.456", "0.406", seed=1)
    our_log(logs, "other", "A", "W", 90.0, "--norm-mean", "0.5", "0.5", "0.5", seed=2)
    rows = _rows(format_table(collect([logs])))
    assert set(rows) == {"ILA-DA+CDAN (norm_mean=(0.485, 0.456, 0.406))", "ILA-DA+CDAN (norm_mean=(0.5, 0.5, 0.5))"}
    assert rows["ILA-DA+CDAN (norm_mean=(0.485, 0.456, 0.406))"][2] == "95.0 ± 1.4"   # both seeds: sample std of 94, 96


def test_resumed_and_cached_runs_share_the_row_of_their_recipe(tmp_path):
    logs = str(tmp_path / "logs")
    our_log(logs, "ila_cdan", "A", "W", 94.0)
    our_log(logs, "ila_cdan", "A", "W", 95.0, "--resume", seed=1)
    our_log(logs, "ila_cdan", "A", "W", 96.0, "--cache-images", seed=2)
    rows = _rows(format_table(collect([logs])))
    assert list(rows) == ["ILA-DA+CDAN"] and rows["ILA-DA+CDAN"][2] == "95.0 ± 1.0"   # the sample standard deviation


def test_a_run_resumed_with_other_values_gets_a_row_of_its_own(tmp_path):
    # its Namespace holds its last --lr, as the clean runs' do; its history line keeps it apart, named last
    logs = str(tmp_path / "logs")
    our_log(logs, "ila_cdan", "A", "W", 94.0, "--lr", "0.005")
    our_log(logs, "ila_cdan", "A", "W", 96.0, "--lr", "0.005", seed=1)
    our_log(logs, "ila_cdan", "A", "W", 90.0, "--lr", "0.005", "--trade-off", "0.5", seed=2,
            history="--lr 0.01 -> 0.005 at epoch 3")
    our_log(logs, "ila_cdan", "A", "W", 80.0, "--lr", "0.005", seed=3, history="--lr 0.01 -> 0.005 at epoch 3")
    rows = _rows(format_table(collect([logs])))
    assert {name: row[2] for name, row in rows.items()} == {
        "ILA-DA+CDAN (trade_off=1.0)": "95.0 ± 1.4",
        "ILA-DA+CDAN (trade_off=0.5; flags over the run: --lr 0.01 -> 0.005 at epoch 3)": "90.0",
        "ILA-DA+CDAN (trade_off=1.0; flags over the run: --lr 0.01 -> 0.005 at epoch 3)": "80.0"}
    # a log without the line (tllib's, or a run never resumed with other values) keeps its row's name
    tllib_log(logs, "cdan", "A", "W", 0, 93.8)
    assert "CDAN" in _rows(format_table(collect([logs])))


def test_a_tllib_log_outside_its_layout_keeps_its_folder_name(tmp_path):
    tllib_log(str(tmp_path / "runs"), "mcc", "A", "W", 0, 94.0)
    os.rename(tmp_path / "runs" / "mcc", tmp_path / "runs" / "my_mcc")
    assert list(_rows(format_table(collect([str(tmp_path)])))) == ["my_mcc"]     # not a phantom DANN


def test_committed_benchmark_logs_keep_their_rows():
    """Our logs written under benchmarks/out/... (no logs/<method>/ layout): named by their flags."""
    results = os.path.join(REPO, "benchmarks", "results", "offline_digits_4x300")
    rows = _rows(format_table(collect([results])))
    assert list(rows) == ["DANN", "ILA-DA+DANN", "CDAN", "ILA-DA+CDAN", "BSP", "ILA-DA+BSP", "MDD", "ILA-DA+MDD"]
    earlier = os.path.join(REPO, "benchmarks", "results", "bn_all_rows", "offline_digits_4x300")
    assert list(_rows(format_table(collect([earlier])))) == ["ILA-DA+DANN", "ILA-DA+CDAN", "BSP", "ILA-DA+BSP",
                                                              "MDD", "ILA-DA+MDD"]
    # each cell is the mean over the seeds' last test_acc1 lines, read here independently
    accs = []
    for path in glob.glob(os.path.join(results, "ILA-DA+CDAN", "mnist2uci_seed*", "train-*.txt")):
        accs.append(float(re.findall(r"^test_acc1 = (\S+)$", open(path).read(), re.M)[-1]))
    assert len(accs) == 5 and rows["ILA-DA+CDAN"][4].startswith("{:.1f} ±".format(sum(accs) / 5))


def test_paired_table_pairs_seeds_of_one_task(tmp_path):
    logs = str(tmp_path / "logs")
    for seed, (aw, dw, ila_aw, ila_dw) in enumerate([(90.0, 98.0, 91.5, 99.0), (92.0, 97.0, 91.5, 97.0)]):
        our_log(logs, "cdan", "A", "W", aw, "--ila-trade-off", "0", seed=seed)
        our_log(logs, "cdan", "D", "W", dw, "--ila-trade-off", "0", seed=seed)
        our_log(logs, "ila", "A", "W", ila_aw, seed=seed)
        our_log(logs, "ila", "D", "W", ila_dw, seed=seed)
    our_log(logs, "ila_mu", "A", "W", 93.0, "--mu", "0.5")                  # a variant, one task, one seed
    rows = _rows(format_paired_table(collect([logs])))
    # A→W: +1.5 and -0.5; D→W: +1.0 and a tie (not a win); standard error of the average over the two tasks:
    # sqrt(var(+1.5, -0.5) / 2 + var(+1.0, 0.0) / 2) / 2 = sqrt(2.0 / 2 + 0.5 / 2) / 2 = 0.56
    assert rows["ILA-DA+CDAN (mu=0.67)"][1:] == ["CDAN", "+0.5 (-0.5 .. +1.5)", "+0.5 (+0.0 .. +1.0)", "+0.5 ± 0.6",
                                                 "2/4 (50%) |"]
    assert rows["ILA-DA+CDAN (mu=0.5)"][1:] == ["CDAN", "+3.0 (+3.0 .. +3.0)", "-", "-", "1/1 (100%) |"]


def test_an_ila_row_pairs_with_the_baseline_row_that_ran_as_it_did(tmp_path):
    # the baselines split into rows on --pretrain-iters: each ILA-DA row is read against the one of its value
    logs = str(tmp_path / "logs")
    for seed in (0, 1):
        our_log(logs, "cdan", "A", "W", 80.0 + seed, "--ila-trade-off", "0", seed=seed)
        our_log(logs, "cdan_warm", "A", "W", 90.0 + seed, "--ila-trade-off", "0", "--pretrain-iters", "300",
                seed=seed)
        our_log(logs, "ila", "A", "W", 85.0, seed=seed)
        our_log(logs, "ila_warm", "A", "W", 89.0, "--pretrain-iters", "300", seed=seed)
    rows = _rows(format_paired_table(collect([logs])))
    assert rows["ILA-DA+CDAN (pretrain_iters=0)"][1:3] == ["CDAN (pretrain_iters=0)", "+4.5 (+4.0 .. +5.0)"]
    assert rows["ILA-DA+CDAN (pretrain_iters=300)"][1:3] == ["CDAN (pretrain_iters=300)", "-1.5 (-2.0 .. -1.0)"]
    # an ILA-DA row whose value no baseline row has is left out, not paired with another one's
    our_log(logs, "ila_longer", "A", "W", 95.0, "--pretrain-iters", "600")
    assert "ILA-DA+CDAN (pretrain_iters=600)" not in _rows(format_paired_table(collect([logs])))


def test_paired_table_without_pairs_says_why(tmp_path):
    logs = str(tmp_path / "logs")
    our_log(logs, "ila", "A", "W", 91.5, seed=0)
    our_log(logs, "cdan", "A", "W", 90.0, "--ila-trade-off", "0", seed=1)    # another seed: no pair
    assert format_paired_table(collect([logs])).startswith("no pairs: no ILA-DA run here has a finished run of "
                                                           "the method it is added to, run with the same flags, "
                                                           "task and seed")
    our_log(logs, "cdan", "A", "W", 90.5, "--ila-trade-off", "0", seed=0)
    assert _rows(format_paired_table(collect([logs])))["ILA-DA+CDAN"][-1] == "1/1 (100%) |"


def test_a_seed_with_two_runs_of_one_row_counts_once_at_their_mean(tmp_path):
    # one baseline seed run twice, in two folders, 80 and 90: read in either order it is one seed at 85 in
    # both tables (pairing with one of them would depend on the order; both would count the seed twice)
    logs = str(tmp_path / "logs")
    our_log(logs, "cdan", "A", "W", 80.0, "--ila-trade-off", "0", seed=0)
    our_log(logs, "cdan_again", "A", "W", 90.0, "--ila-trade-off", "0", seed=0)
    our_log(logs, "cdan", "A", "W", 81.0, "--ila-trade-off", "0", seed=1)
    our_log(logs, "ila", "A", "W", 85.0, seed=0)
    our_log(logs, "ila", "A", "W", 84.0, seed=1)
    note = "\n\nseeds with more than one run, each counted once at the mean of its runs: CDAN, A→W, seed 0 ("
    paired = format_paired_table(collect([logs]))
    assert _rows(paired)["ILA-DA+CDAN"][1:5] == ["CDAN", "+1.5 (+0.0 .. +3.0)", "+1.5 ± 1.5", "1/2 (50%) |"]
    assert paired.split(note)[1] in ("80.0 and 90.0)", "90.0 and 80.0)")
    table = format_table(collect([logs]))
    assert _rows(table)["CDAN"][2:5] == ["83.0 ± 2.8", "83.0 ± 2.8", "2 |"]   # seeds 0 and 1 at 85 and 81
    assert note in table


def test_a_log_copied_into_another_folder_is_one_run(tmp_path):
    logs = tmp_path / "logs"
    our_log(str(logs), "cdan", "A", "W", 80.0, "--ila-trade-off", "0", seed=0)
    our_log(str(logs), "cdan", "A", "W", 84.0, "--ila-trade-off", "0", seed=1)
    import shutil
    shutil.copytree(logs / "cdan", tmp_path / "backup" / "cdan")
    table = format_table(collect([str(logs), str(tmp_path / "backup")]))
    assert _rows(table)["CDAN"][2:5] == ["82.0 ± 2.8", "82.0 ± 2.8", "2 |"] and "\n\n" not in table


def test_a_resumed_baseline_does_not_stop_the_others_from_pairing(tmp_path):
    # a baseline resumed with another --lr ran another recipe: its row pairs with no plain ILA-DA row, and the
    # plain baseline row still does
    logs = str(tmp_path / "logs")
    for seed in (0, 1):
        our_log(logs, "cdan", "A", "W", 80.0, "--ila-trade-off", "0", seed=seed)
        our_log(logs, "ila", "A", "W", 84.0 + seed, seed=seed)
    our_log(logs, "cdan", "D", "W", 90.0, "--ila-trade-off", "0", history="--lr 0.01 -> 0.005 at epoch 1")
    rows = _rows(format_paired_table(collect([logs])))
    assert rows["ILA-DA+CDAN"][1:3] == ["CDAN", "+4.5 (+4.0 .. +5.0)"] and len(rows) == 1


#: the first release's similarity, the paper's (the scripts' default before the angle)
PAPER_SIMILARITY = ["--similarity", "inverse_euclidean"]


@pytest.mark.parametrize("dest, flag, value, default", [("ila_spectral_form", "--ila-spectral-form", "no-shrink", "bsp"),
                                                        ("ila_source_bank", "--ila-source-bank", "32", "0"),
                                                        ("ila_mining_ema", "--ila-mining-ema", "0.9", "0.0"),
                                                        ("ila_ratio_terms", "--ila-ratio-terms", "matched", "top-m"),
                                                        ("ila_source_sampling", "--ila-source-sampling", "random",
                                                         "balanced"),
                                                        ("ila_mining_similarity", "--ila-mining-similarity", "cosine",
                                                         "inverse_euclidean"),
                                                        ("ila_spectral_schedule", "--ila-spectral-schedule", "term",
                                                         "constant"),
                                                        ("ila_spectral_domains", "--ila-spectral-domains", "target",
                                                         "both"),
                                                        ("ila_spectral_penalty", "--ila-spectral-penalty", "0.0002",
                                                         "0.0"),
                                                        ("ila_bn_statistics", "--ila-bn-statistics", "tllib", "all")])
def test_a_flag_added_later_splits_rows_from_logs_that_lack_it(tmp_path, dest, flag, value, default):
    # logs written before the later flags existed ran without them: they join new runs with the flag at the
    # value that means "off" (the first release's behaviour), not the runs that set it
    from ila_cdan import CDAN
    from ila_tllib.engine import get_parser
    logs = str(tmp_path / "logs")
    for seed, acc in enumerate((90.0, 92.0)):
        log = os.path.join(logs, "old", f"Office31_A2W_seed{seed}")
        namespace = get_parser(CDAN()).parse_args(["data/office31", "-s", "A", "-t", "W", "-a", "resnet50",
                                                    "--seed", str(seed), "--log", log, *PAPER_SIMILARITY])
        for name in FLAGS_ADDED_LATER:
            if hasattr(namespace, name):     # MDD's --ila-features: CDAN has none
                delattr(namespace, name)
        _write_log(log, namespace, acc)
    # all off (the first release's behaviour): only the flag under test varies
    off = ["--ila-source-bank", "0", "--ila-mining-ema", "0", "--ila-spectral-form", "bsp", "--ila-spectral-penalty",
           "0", "--ila-bn-statistics", "all", *PAPER_SIMILARITY]
    our_log(logs, "flag-off", "A", "W", 94.0, *off, flag, default, seed=2)
    # an average's default follows the decay (from-dropout when > 0): name the one the runs at 0 log
    same_average = ["--ila-mining-average", "network"] if dest == "ila_mining_ema" else []
    our_log(logs, "new-flag", "A", "W", 95.0, *off, flag, value, *same_average)
    rows = _rows(format_table(collect([logs])))
    assert set(rows) == {f"ILA-DA+CDAN ({dest}={default})", f"ILA-DA+CDAN ({dest}={value})"}
    assert rows[f"ILA-DA+CDAN ({dest}={default})"][2] == "92.0 ± 2.0"


def test_a_cosine_log_from_before_the_mining_similarity_joins_the_cosine_runs(tmp_path):
    # --ila-mining-similarity came after the angle: a log without it mined with its own --similarity, so it
    # averages with a new run that mines with the angle, not with the paper's distance
    from ila_cdan import CDAN
    from ila_tllib.engine import get_parser
    logs = str(tmp_path / "logs")
    log = os.path.join(logs, "old", "Office31_A2W")
    namespace = get_parser(CDAN()).parse_args(["data/office31", "-s", "A", "-t", "W", "-a", "resnet50", "--seed", "0",
                                                "--log", log, "--similarity", "cosine"])
    delattr(namespace, "ila_mining_similarity")
    _write_log(log, namespace, 90.0)
    our_log(logs, "new", "A", "W", 92.0, "--similarity", "cosine", seed=1)
    rows = _rows(format_table(collect([logs])))
    assert list(rows) == ["ILA-DA+CDAN"] and rows["ILA-DA+CDAN"][2] == "91.0 ± 1.4"   # sample std of 90 and 92


def test_a_folder_named_twice_counts_once_and_its_newest_finished_log_is_read(tmp_path):
    # a log folder re-run holds a log per start (named by its time): the newest finished one is the run;
    # naming the folder twice (another spelling of the same path) must not make it two seeds
    from ila_cdan import CDAN
    from ila_tllib.engine import get_parser
    log = os.path.join(str(tmp_path), "logs", "Office31_A2W")
    namespace = get_parser(CDAN()).parse_args(["data/office31", "-s", "A", "-t", "W", "--log", log])
    _write_log(log, namespace, 90.0, stamp="2024-03-01-10_00_00")
    _write_log(log, namespace, 92.0, stamp="2024-03-02-10_00_00")
    with open(os.path.join(log, "train-2024-03-03-10_00_00.txt"), "w") as f:    # started, not finished
        f.write(repr(namespace) + "\n")
    again = os.path.join(str(tmp_path), "logs", "..", "logs")
    runs = collect([os.path.join(str(tmp_path), "logs"), again])
    assert [run.acc for run in runs] == [92.0]


def test_command_line(tmp_path):
    tllib_log(str(tmp_path / "logs"), "mcc", "A", "W", 0, 94.0)
    # reading logs needs no torch (the package loads its torch parts on first use)
    no_torch = env_without_torch()
    assert subprocess.run([sys.executable, "-c", "import torch"], env=no_torch, capture_output=True).returncode != 0
    done = subprocess.run([sys.executable, "-m", "ila_tllib.tables", str(tmp_path / "logs")], capture_output=True,
                          text=True, cwd=REPO, env=no_torch)
    assert done.returncode == 0 and "| MCC | 89.4 | 94.0 | 94.0 | 1 |" in done.stdout, done.stderr[-2000:]
    assert "ILA-DA row" not in done.stdout
    done = subprocess.run([sys.executable, "-m", "ila_tllib.tables", "--paired", str(tmp_path / "logs")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0 and done.stdout.endswith("\n\nno pairs: no ILA-DA run here\n")   # tllib's MCC alone
    done = subprocess.run([sys.executable, "-m", "ila_tllib.tables", str(tmp_path / "none")], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 2 and "no such log directory" in done.stderr


def test_an_ablation_paired_with_the_default_seed_by_seed(tmp_path):
    # A→W: +2.0 and -1.0 (seeds 0, 1); D→W: +0.5 (seed 0; seed 1 has no default run and is left out)
    variant, default = str(tmp_path / "variant"), str(tmp_path / "default")
    for task, seed, ours, theirs in (("A", 0, 92.0, 90.0), ("A", 1, 90.0, 91.0), ("D", 0, 98.5, 98.0)):
        our_log(variant, "bank", task, "W", ours, "--ila-source-bank", "32", seed=seed)
        our_log(default, "default", task, "W", theirs, seed=seed)
    our_log(variant, "bank", "D", "W", 10.0, "--ila-source-bank", "32", seed=1)
    script = os.path.join(REPO, "benchmarks", "paired_with_default.py")
    done = subprocess.run([sys.executable, script, variant, default], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| ILA-DA+CDAN | A→W +0.5 (-1.0 .. +2.0); D→W +0.5 (+0.5 .. +0.5) | +0.5 | 2/3 |" in done.stdout
    done = subprocess.run([sys.executable, script, variant, str(tmp_path / "none")], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and f"no such log directory: {tmp_path / 'none'}" in done.stderr
    os.makedirs(tmp_path / "empty")
    done = subprocess.run([sys.executable, script, variant, str(tmp_path / "empty")], capture_output=True, text=True,
                          cwd=REPO)
    assert done.returncode == 2 and "no ILA-DA run of the same method, task and seed" in done.stderr
    # a folder holding the ablation's runs next to the default's would pair some runs with themselves
    done = subprocess.run([sys.executable, script, variant, str(tmp_path)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "the variant's and the default's folders hold the same runs" in done.stderr
    done = subprocess.run([sys.executable, script, variant, variant], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "the variant's and the default's folders hold the same runs" in done.stderr
    mixed = tmp_path / "mixed"        # a copy of the ablation's runs next to the default's
    shutil.copytree(variant, mixed / "bank")
    shutil.copytree(default, mixed / "default")
    done = subprocess.run([sys.executable, script, variant, str(mixed)], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "two runs of ILA-DA+CDAN A→W seed 0" in done.stderr
    # an ablation of another budget against the default's: refused, not a "difference" of the budget
    budget = str(tmp_path / "budget")
    our_log(budget, "short", "A", "W", 30.0, "--ila-source-bank", "32", "-i", "30", seed=0)
    done = subprocess.run([sys.executable, script, budget, default], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and "ran other recipes (iters_per_epoch 30 and 1000)" in done.stderr, done.stderr
    # the variant's runs split over two folders (e.g. later seeds logged apart) pool into the same pairs
    later = str(tmp_path / "later")
    our_log(later, "bank", "A", "W", 93.0, "--ila-source-bank", "32", seed=2)
    our_log(default, "default", "A", "W", 92.0, seed=2)
    done = subprocess.run([sys.executable, script, variant, default, "--more", later], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| ILA-DA+CDAN | A→W +0.7 (-1.0 .. +2.0); D→W +0.5 (+0.5 .. +0.5) |" in done.stdout and "| 3/4 |" in done.stdout
    # ...and --seeds keeps the pairs of those seeds only (A→W seeds 0 and 2: +2.0, +1.0)
    done = subprocess.run([sys.executable, script, variant, default, "--more", later, "--seeds", "0", "2"],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "| ILA-DA+CDAN | A→W +1.5 (+1.0 .. +2.0); D→W +0.5 (+0.5 .. +0.5) |" in done.stdout and "| 3/3 |" in done.stdout


def test_the_logged_method_names_the_run_whatever_its_flags(tmp_path):
    # a method of the user's own plugs into the tables by its name alone: the "method:" line wins over the
    # flags (these logs have CDAN's --randomized), tllib's names are used where they exist; a log written
    # before that line is still named by its flags
    logs = str(tmp_path / "logs")
    our_log(logs, "ila_mcc", "A", "W", 95.0, method="mcc")
    our_log(logs, "mcc", "A", "W", 94.0, "--ila-trade-off", "0", method="mcc")
    our_log(logs, "mine", "A", "W", 93.0, method="fancy_da")
    our_log(logs, "old", "A", "W", 92.0)
    assert sorted(run.method for run in collect([logs])) == ["ILA-DA+CDAN", "ILA-DA+FANCY_DA", "ILA-DA+MCC", "MCC"]


def test_erm_is_a_run_without_any_adaptation_term(tmp_path):
    # --trade-off 0 and --ila-trade-off 0: DANN's run is ERM; BSP's keeps its penalty (--trade-off-bsp), and a
    # method of one's own may weigh its term with a flag of its own: both keep their names
    from ila_bsp import BSP
    from ila_tllib.engine import get_parser
    logs = str(tmp_path / "logs")
    our_log(logs, "dann0", "A", "W", 70.0, "--trade-off", "0", "--ila-trade-off", "0", method="dann")
    our_log(logs, "mine0", "A", "W", 71.0, "--trade-off", "0", "--ila-trade-off", "0", method="fancy_da")
    for folder, extra, acc in (("bsp0", [], 72.0), ("bsp00", ["--trade-off-bsp", "0"], 73.0)):
        log = os.path.join(logs, folder, "Office31_A2W")
        _write_log(log, get_parser(BSP()).parse_args(["data/office31", "-s", "A", "-t", "W", "--trade-off", "0",
                                                      "--ila-trade-off", "0", "--log", log, *extra]), acc)
    # with ILA-DA's term on, --trade-off 0 leaves ILA-DA added to no adversary: still the method's ILA-DA row;
    # the sampling control (--balanced-source) has its own row
    our_log(logs, "dann_ila", "A", "W", 74.0, "--trade-off", "0", method="dann")
    our_log(logs, "dann_balanced", "A", "W", 75.0, "--ila-trade-off", "0", "--balanced-source", method="dann")
    named = {os.path.basename(os.path.dirname(os.path.dirname(run.path))): run.method for run in collect([logs])}
    assert named == {"dann0": "ERM", "mine0": "FANCY_DA", "bsp0": "BSP", "bsp00": "ERM", "dann_ila": "ILA-DA+DANN",
                     "dann_balanced": "DANN (balanced source)"}


def _namespace(*argv):
    from ila_cdan import CDAN
    from ila_tllib.engine import get_parser
    return get_parser(CDAN()).parse_args(["data/x", *argv])


def test_tasks_that_share_a_short_name_keep_columns_of_their_own(tmp_path):
    # MNIST and MNISTRGB are both "M": the two tasks must not be averaged as two seeds of one
    logs = tmp_path / "logs"
    _write_log(str(logs / "grey"), _namespace("-d", "Digits", "-s", "MNIST", "-t", "USPS", "--seed", "0"), 90.0)
    _write_log(str(logs / "rgb"), _namespace("-d", "Digits", "-s", "MNISTRGB", "-t", "USPSRGB", "--seed", "0"), 50.0)
    table = format_table(collect([str(logs)]))
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    assert header[3:-1] == ["MNIST→USPS", "MNISTRGB→USPSRGB"]
    assert table.splitlines()[2].split(" | ")[2:5] == ["70.0", "90.0", "50.0"]


def test_domains_typed_in_another_case_are_one_task(tmp_path):
    # -s a runs Office-31's A; a log that kept the name as typed is a seed of the same task
    logs = str(tmp_path / "logs")
    our_log(logs, "upper", "A", "W", 94.0)
    our_log(logs, "upper", "A", "W", 95.0, seed=1)
    our_log(logs, "lower", "a", "w", 97.0, seed=2)
    table = format_table(collect([logs]))
    header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
    assert header[3:-1] == ["A→W"]                       # the spelling most runs use
    assert _rows(table)["ILA-DA+CDAN"][2] == "95.3 ± 1.5"   # mean and sample std of 94, 95, 97


def test_runs_of_other_seeds_in_one_folder_are_runs_of_their_own(tmp_path):
    # tllib's layout gives one folder per task, and a loop over seeds logs each seed there; a second finished
    # log of the same seed (a restart) replaces the first
    log = tmp_path / "logs" / "Office31_A2W"
    for stamp, seed, acc in (("2024-03-01-10_00_00", 0, 70.0), ("2024-03-02-10_00_00", 1, 80.0),
                             ("2024-03-03-10_00_00", 2, 90.0), ("2024-03-04-10_00_00", 0, 72.0)):
        _write_log(str(log), _namespace("-s", "A", "-t", "W", "--seed", str(seed)), acc, stamp=stamp)
    assert sorted(run.acc for run in collect([str(tmp_path / "logs")])) == [72.0, 80.0, 90.0]


def test_the_average_over_tasks_pairs_runs_by_seed(tmp_path):
    # read in the order a, b of each folder: seed 0 then 1 on A→W, seed 1 then 0 on D→W. Seed by seed the
    # averages are 70 (80, 60) and 80 (90, 70)
    logs = tmp_path / "logs"
    for task, folder, seed, acc in (("A", "a", 0, 80.0), ("A", "b", 1, 90.0), ("D", "a", 1, 70.0),
                                    ("D", "b", 0, 60.0)):
        _write_log(str(logs / f"{task}2W" / folder), _namespace("-s", task, "-t", "W", "--seed", str(seed)), acc)
    row = format_table(collect([str(logs)])).splitlines()[2].split(" | ")
    assert row[2] == "75.0 ± 7.1"
    _write_log(str(logs / "D2W" / "c"), _namespace("-s", "D", "-t", "W", "--seed", "2"), 50.0)
    row = format_table(collect([str(logs)])).splitlines()[2].split(" | ")
    assert row[2] == "72.5"        # other seeds on the two tasks: the mean of the tasks' means (85, 60), no spread


def test_runs_without_a_seed_are_runs_of_their_own(tmp_path):
    # tllib's scripts run without --seed by default: three such runs are three runs (not one seed at their
    # mean), and they pair with nothing
    logs = str(tmp_path / "logs")
    for i, acc in enumerate((93.0, 93.3, 92.0)):
        our_log(logs, f"dann{i}", "A", "W", acc, "--ila-trade-off", "0", "--randomized", seed=None)
        our_log(logs, f"ila{i}", "A", "W", acc + 1, seed=None)
    table = format_table(collect([logs]))
    assert _rows(table)["CDAN"][2:5] == ["92.8 ± 0.7", "92.8 ± 0.7", "3 |"] and "\n\n" not in table
    assert format_paired_table(collect([logs])).startswith("no pairs")


def test_a_baseline_trained_otherwise_pairs_with_nothing(tmp_path):
    # the same task and seeds, but the baselines ran 4 epochs and ILA-DA 2: not "run with the same flags"
    logs = str(tmp_path / "logs")
    for seed in (0, 1):
        our_log(logs, "cdan", "A", "W", 80.0, "--ila-trade-off", "0", "--epochs", "4", seed=seed)
        our_log(logs, "ila", "A", "W", 84.0, "--epochs", "2", seed=seed)
    assert format_paired_table(collect([logs])).startswith("no pairs: no ILA-DA run here has a finished run")
    # flags of ILA's term alone (here --k and --mu, which a baseline's .sh line may pass or not) do not part them
    logs = str(tmp_path / "other_logs")
    for seed in (0, 1):
        our_log(logs, "cdan_k", "D", "W", 80.0, "--ila-trade-off", "0", "--k", "3", "--mu", "0.75", seed=seed)
        our_log(logs, "ila", "D", "W", 83.0, seed=seed)
    assert _rows(format_paired_table(collect([logs])))["ILA-DA+CDAN"][2] == "+3.0 (+3.0 .. +3.0)"


@pytest.mark.parametrize("backup", ["a_backup", "z_backup"])
def test_a_copy_in_a_backup_folder_counts_the_same_whatever_its_name(tmp_path, backup):
    # the folder holds an older (90) and a newer (93) log of seed 0, and a backup holds a copy of the older
    logs = tmp_path / "logs"
    our_log(str(logs), "cdan", "A", "W", 90.0, "--ila-trade-off", "0")
    log = next((logs / "cdan").rglob("train-*.txt"))
    newer = log.with_name("train-2024-03-02-10_00_00.txt")
    newer.write_text(log.read_text().replace("test_acc1 = 90.0", "test_acc1 = 93.0"))
    (tmp_path / backup).mkdir()
    import shutil
    shutil.copy(log, tmp_path / backup / log.name)
    runs = collect([str(logs), str(tmp_path / backup)])
    assert sorted(r.acc for r in runs) == [90.0, 93.0]     # the folder's newest, and the backup's own log


def test_a_log_without_the_domains_is_not_a_run(tmp_path):
    folder = tmp_path / "logs" / "erm" / "CUB200"
    folder.mkdir(parents=True)
    (folder / "train-2024-03-01-10_00_00.txt").write_text("Namespace(root='data', arch='resnet50', seed=0)\n"
                                                          "test_acc1 = 80.0\n")
    assert collect([str(tmp_path / "logs")]) == []


def test_the_flags_of_ilas_term_are_the_ila_group_but_those_that_change_a_baseline():
    from ila_tllib.engine.flags import add_ila_arguments
    from ila_tllib.logged_flags import is_ila_term_flag
    ila_group = argparse.ArgumentParser()
    add_ila_arguments(ila_group)
    dests = {a.dest for a in ila_group._actions} - {"help"}
    assert {d for d in dests if not is_ila_term_flag(d)} == {"balanced_source", "pretrain_iters"}
    from ila_mdd import MDD
    from ila_tllib.engine import get_parser
    others = {a.dest for a in get_parser(MDD())._actions} - dests
    assert {d for d in others if is_ila_term_flag(d)} == {"ila_features"}    # MDD's choice of ILA's features


def test_a_link_to_nowhere_and_a_folder_named_like_a_log_are_not_logs(tmp_path):
    logs = tmp_path / "logs"
    our_log(str(logs), "cdan", "A", "W", 80.0, "--ila-trade-off", "0")
    os.symlink(str(tmp_path / "gone.txt"), str(logs / "train-2024-01-01-00_00_00.txt"))
    (logs / "old" / "train-2024-01-02-00_00_00.txt").mkdir(parents=True)
    assert [run.acc for run in collect([str(logs)])] == [80.0]


def _tables(*args):
    return subprocess.run([sys.executable, "-m", "ila_tllib.tables", *map(str, args)], capture_output=True, text=True,
                          cwd=REPO)


def test_a_baseline_logged_into_ila_das_folder_is_a_run_of_its_own(tmp_path):
    # tllib's layout logs/<script>/<Task>: the baseline (--ila-trade-off 0) and ILA-DA of one seed in one folder
    # are two runs (the older one was dropped as if restarted); a restart of one recipe is still one run
    from ila_cdan import CDAN
    from ila_tllib.engine import get_parser
    log = os.path.join(str(tmp_path), "ila_cdan", "Office31_A2W")
    parse = get_parser(CDAN()).parse_args
    ila = parse(["data/office31", "-s", "A", "-t", "W", "--seed", "0", "--log", log])
    baseline = parse(["data/office31", "-s", "A", "-t", "W", "--seed", "0", "--log", log, "--ila-trade-off", "0"])
    _write_log(log, ila, 91.0, stamp="2024-03-01-10_00_00", method="cdan")
    _write_log(log, baseline, 87.0, stamp="2024-03-02-10_00_00", method="cdan")
    _write_log(log, baseline, 88.0, stamp="2024-03-03-10_00_00", method="cdan")     # the baseline run again
    runs = collect([str(tmp_path)])
    assert sorted((run.method, run.acc) for run in runs) == [("CDAN", 88.0), ("ILA-DA+CDAN", 91.0)]
    assert "| ILA-DA+CDAN | CDAN | +3.0 (+3.0 .. +3.0) | +3.0 | 1/1 (100%) |" in format_paired_table(runs)
    # ILA-DA's run resumed with other values of the flags a resume may change continues that run: one run
    longer = parse(["data/office31", "-s", "A", "-t", "W", "--seed", "0", "--log", log, "--epochs", "30",
                    "--lr", "0.005", "--resume"])
    _write_log(log, longer, 93.0, stamp="2024-03-04-10_00_00", method="cdan",
               history="--epochs 20 -> 30 at epoch 20, --lr 0.01 -> 0.005 at epoch 20")
    runs = collect([str(tmp_path)])
    assert sorted((run.method, run.acc) for run in runs) == [("CDAN", 88.0), ("ILA-DA+CDAN", 93.0)]


@pytest.mark.parametrize("damage", ["cut", "two_points", "namespace", "no_namespace"])
def test_a_damaged_log_is_named_and_exits_2(tmp_path, damage):
    # a result line cut short read as another accuracy (95.5 -> 9), "1.2.3" was a traceback, and a finished
    # log whose Namespace line cannot be read, or is gone, left its seed out unseen
    logs = tmp_path / "logs"
    for seed, acc in ((0, 95.5), (1, 94.5)):
        tllib_log(str(logs), "dann", "A", "W", seed, acc)
    damaged = glob.glob(str(logs / "dann" / "Office31_A2W" / "train-*.txt"))[0]
    text = open(damaged).read()
    text = {"cut": text[:-4], "two_points": text.replace("test_acc1 = 95.5", "test_acc1 = 1.2.3"),
            "namespace": text.replace("Namespace(", "Namespace(((", 1),
            "no_namespace": "".join(line for line in text.splitlines(True) if not line.startswith("Namespace("))}[damage]
    with open(damaged, "w") as f:
        f.write(text)
    done = _tables(logs)
    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert done.stderr.startswith(f"error: {damaged}: ") and "Traceback" not in done.stderr, done.stderr
    # a log cut short before its result line is an unfinished run, not damage: the other seed is the table
    with open(damaged, "w") as f:
        f.write(open(glob.glob(str(logs / "dann" / "Office31_A2W_seed1" / "train-*.txt"))[0]).read().split(
            "test_acc1")[0].replace("Namespace(", "Namespace(((", 1))
    done = _tables(logs)
    assert done.returncode == 0 and "| DANN | 82.2 | 94.5 | 94.5 | 1 |" in done.stdout, done.stdout + done.stderr


def test_folders_without_a_finished_run_exit_2(tmp_path):
    os.makedirs(tmp_path / "empty")
    (tmp_path / "empty" / "README.md").write_text("notes\n")
    done = _tables(tmp_path / "empty")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"error: no finished run in {tmp_path / 'empty'} (no training log with a test_acc1 line); " \
                          f"give the --log folders of finished runs\n"


#: the flags of ILA's term that every log of this package has: a flag of ILA's term added after them must be
#: in FLAGS_ADDED_LATER, with the value that gives the runs before it, or the tables file those runs with the
#: runs that set it, under a row name without it (MDD's --ila-features was: 88 of its ILA-DA logs lack it)
ILA_FLAGS_EVERY_LOG_HAS = {"classes_per_batch", "ila_batch", "ila_keep_schedule", "ila_reliability", "ila_schedule",
                           "ila_start_iter", "ila_temperature", "ila_trade_off", "k", "metric_loss", "mu",
                           "pseudo_label", "samples_per_class", "similarity"}


def test_every_later_flag_of_ilas_term_says_what_runs_before_it_did():
    import ila_bsp
    import ila_cdan
    import ila_dann
    import ila_mdd
    from ila_tllib.engine import get_parser
    from ila_tllib.logged_flags import is_ila_term_flag
    dests = {action.dest for method in (ila_cdan.CDAN(), ila_dann.DANN(), ila_mdd.MDD(), ila_bsp.BSP())
             for action in get_parser(method)._actions if is_ila_term_flag(action.dest)}
    assert dests - ILA_FLAGS_EVERY_LOG_HAS - set(FLAGS_ADDED_LATER) == set(), "add them to FLAGS_ADDED_LATER"
    # the set above is what the committed logs hold: each of their ILA-DA runs logged every one of them
    logs = glob.glob(os.path.join(REPO, "benchmarks", "results", "**", "train-*.txt"), recursive=True)
    checked = 0
    for path in logs:
        with open(path, encoding="utf-8") as f:
            namespace = f.readline()
        if not re.search(r"\bila_trade_off=[1-9]", namespace):
            continue
        missing = {d for d in ILA_FLAGS_EVERY_LOG_HAS if f" {d}=" not in namespace and f"({d}=" not in namespace}
        assert not missing, (path, missing)
        checked += 1
    assert checked > 1000


def test_a_folder_whose_name_globs_is_read(tmp_path):
    # the folder named was a glob pattern: "logs[1]" matched "logs1", and its runs were left out
    logs = str(tmp_path / "logs[1]")
    tllib_log(logs, "dann", "A", "W", 0, 95.5)
    assert [run.acc for run in collect([logs])] == [95.5]


def test_runs_of_other_recipes_are_told_apart_for_pairing():
    # what gain_by_shift, paired_with_default and control_steps refuse to pair: the data as read, the network,
    # the budget, and values a resume changed over the run; ILA's own flags and the warm-up may differ
    from ila_tllib.run_logs import Run, recipe_difference
    base = dict(data="ImageList", arch="lenet", resize_size=28, epochs=4, iters_per_epoch=300, lr=0.01, seed=0,
                k=3, pretrain_iters=0)
    a = Run(base, 50.0, "A/x.txt")
    assert recipe_difference(a, Run(dict(base, k=5, pretrain_iters=300, seed=1), 60.0, "B/x.txt")) == ""
    told = recipe_difference(a, Run(dict(base, resize_size=32, iters_per_epoch=30), 60.0, "B/x.txt"))
    assert told == ("A and B ran other recipes (resize_size 28 and 32, iters_per_epoch 300 and 30): their "
                    "accuracies do not pair; give runs of one recipe and budget")
    resumed = Run(base, 60.0, "B/x.txt", flags_over_the_run="--lr 0.01 -> 0.005 at epoch 2")
    assert "(flags over the run: none and --lr 0.01 -> 0.005 at epoch 2)" in recipe_difference(a, resumed)
