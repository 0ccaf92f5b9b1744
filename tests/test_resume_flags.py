"""Which flag changes a --resume refuses, and what it tells, on hand-written flag sets; and what an
interrupted run says it leaves."""
import argparse
import os

from ila_tllib.engine.checkpoint import RunDirectory
from ila_tllib.engine.resume_flags import (changed_flags, finished_run_refusal, flag_history, history_line,
                                          inexact_notes, refusal)
from ila_tllib.engine.run import interrupted_state

OLD = dict(root="data", log="L", batch_size=8, seed=None, k=3, lr=0.01, epochs=2, workers=0, norm_mean=(0.5,),
           ratio=(0.75, 4 / 3), randomized=False, ila_trade_off=1.0, ila_mining_ema=1e-6,
           ila_mining_average="from-dropout")


def test_a_typed_default_and_the_allowed_flags_change_nothing():
    # --norm-mean typed is a list where the default is a tuple; root, log, lr and epochs may change
    new = dict(OLD, root="moved", log="M", lr=0.001, epochs=3, norm_mean=[0.5], ratio=[0.75, 4 / 3])
    assert changed_flags(OLD, new) == []
    notes = inexact_notes(OLD, new)
    assert notes[0] == "--lr 0.01 (now 0.001): the rest of the run trains with the new value"
    assert notes[1].startswith("--epochs 2 (now 3): schedules that span the run (ILA-DA's schedule) now span 3 epochs")


def test_more_epochs_change_nothing_without_a_schedule_over_the_run():
    # tllib's learning rate follows the iteration alone: with ILA off, or on a step schedule, more epochs
    # continue the run exactly, and no note says otherwise
    for flags in (dict(ila_trade_off=0.0), dict(ila_schedule="step")):
        old = dict(OLD, **flags)
        assert inexact_notes(old, dict(old, epochs=3)) == []
    old = dict(OLD, ila_schedule="step", ila_keep_schedule="ramp")
    assert inexact_notes(old, dict(old, epochs=3))[0].startswith("--epochs 2 (now 3): schedules that span the run")


def test_the_history_keeps_every_value_a_changed_flag_had():
    # resumed after 2 epochs: --lr lowered and --epochs raised (ILA's ramp spans the run); -j and --log change
    # nothing
    first = dict(OLD, lr=0.005, epochs=3, workers=2, log="M")
    history = flag_history({}, OLD, first, 2)
    assert history == {"lr": [[0.01, 2]], "epochs": [[2, 2]]}
    assert history_line(history, first) == \
        "flags over the run: --lr 0.01 -> 0.005 at epoch 2, --epochs 2 -> 3 at epoch 2"
    # a second resume that changes nothing keeps the line; one that goes back to 0.01 is still a mixed run
    assert flag_history(history, first, first, 3) == history
    back = dict(first, lr=0.01)
    assert history_line(flag_history(history, first, back, 3), back) == \
        "flags over the run: --lr 0.01 -> 0.005 at epoch 2 -> 0.01 at epoch 3, --epochs 2 -> 3 at epoch 2"
    # with ILA off, more epochs continue the run exactly and ILA's temperature trains nothing: no history
    off = dict(OLD, ila_trade_off=0.0, ila_temperature=1.0)
    assert flag_history({}, off, dict(off, epochs=3, ila_temperature=0.5), 2) == {}
    assert flag_history({}, off, dict(off, lr=0.005), 2) == {"lr": [[0.01, 2]]}


def test_each_change_is_told_with_both_values_and_how_to_go_back():
    new = dict(OLD, batch_size=6, seed=3, randomized=True, ratio=[0.5, 2.0])
    changes = changed_flags(OLD, new)
    assert [dest for dest, _, _ in changes] == ["batch_size", "seed", "ratio", "randomized"]
    told = refusal("P", OLD, changes)
    assert ("other flags: --batch-size 8 (now 6), --seed not given (now 3), --ratio 0.75 1.3333333333333333 "
            "(now 0.5 2), --randomized off (now on) (to continue it, add --batch-size 8 --ratio 0.75 "
            "1.3333333333333333 and drop --seed --randomized)") in told
    # what it says to add can be typed back: 4/3 in full, so it compares equal again
    assert float(told.split("--ratio 0.75 ")[1].split()[0]) == 4 / 3


def test_switching_ila_da_off_is_named_alone():
    # --ila-trade-off may be lowered, not to 0: the defaults that follow it (the mining average) are not named
    new = dict(OLD, ila_trade_off=0.0, ila_mining_ema=0.0, ila_mining_average="network")
    assert changed_flags(OLD, new) == [("ila_trade_off", 1.0, 0.0)]
    assert changed_flags(OLD, dict(OLD, ila_trade_off=0.5)) == []


def test_an_interrupted_new_run_does_not_claim_an_earlier_runs_checkpoints(tmp_path):
    log = str(tmp_path / "log")
    os.makedirs(os.path.join(log, "checkpoints"))
    open(os.path.join(log, "checkpoints", "resume.pth"), "wb").close()      # an earlier run's
    args = argparse.Namespace(phase="train", resume=False, log=log)
    directory = RunDirectory(log, "train", resume=False)
    assert interrupted_state(args, directory) == (f"no epoch of this run had finished; the checkpoints in {log} "
                                                  f"are an earlier run's, untouched")
    directory.set_aside = True     # once they were set aside, a resume.pth is this run's
    assert interrupted_state(args, directory).endswith("holds the last finished epoch; continue with --resume")
    assert interrupted_state(argparse.Namespace(phase="train", resume=True, log=log), None).endswith(
        "continue with --resume")


def test_a_flag_added_later_reads_as_the_behaviour_the_run_had():
    # a run saved before --ila-mining-similarity existed mined with its own --similarity: resumed with the
    # angle it changes nothing; a run without the later flags it does not know is told them as they were off
    old = dict(OLD, similarity="cosine")
    now = dict(old, ila_mining_similarity="cosine", ila_source_bank=0)
    assert changed_flags(old, now) == []
    assert changed_flags(old, dict(now, ila_mining_similarity="inverse_euclidean")) == \
        [("ila_mining_similarity", "cosine", "inverse_euclidean")]
    assert changed_flags(old, dict(now, ila_source_bank=8)) == [("ila_source_bank", 0, 8)]


def test_naming_the_old_decay_brings_the_old_average_back():
    # the average's default follows --ila-mining-ema: a refusal names the decay alone when the old average was
    # the default for it, and both when it was chosen
    new = dict(OLD, ila_mining_ema=0.99, ila_mining_average="network")
    told = refusal("P", OLD, changed_flags(OLD, new))
    assert "(to continue it, add --ila-mining-ema 1e-06)" in told
    chosen = dict(OLD, ila_mining_average="bottleneck")
    told = refusal("P", chosen, changed_flags(chosen, new))
    assert "(to continue it, add --ila-mining-ema 1e-06 --ila-mining-average bottleneck)" in told


def test_a_divergence_names_only_flags_the_run_has_and_a_resume_may_change():
    # each named flag is one a resume may change, and the temperature only where the metric loss has one
    import ila_dann
    from ila_tllib.engine import get_parser
    from ila_tllib.engine.flags import divergence_fix
    from ila_tllib.engine.resume_flags import CHANGE_TO_RECOVER

    def told(*flags):
        return divergence_fix(get_parser(ila_dann.DANN()).parse_args(["root", "-s", "a", "-t", "b", *flags]))
    assert told() == "lower --lr or the loss weights --trade-off and --ila-trade-off, or raise --ila-temperature"
    assert told("--metric-loss", "triplet") == "lower --lr or the loss weights --trade-off and --ila-trade-off"
    assert told("--ila-trade-off", "0") == "lower --lr or the loss weight --trade-off"
    named = {word.strip("-,").replace("-", "_") for word in told().split() if word.startswith("--")}
    assert named <= set(CHANGE_TO_RECOVER)


def test_an_epoch_count_at_or_below_the_epochs_trained_is_refused_finished_or_not():
    # a run of 3 epochs interrupted after 2: --epochs 1 or 2 would train nothing and file it as a run of 1 or
    # 2 epochs (it was let through while the run had not finished); 3 and more train on
    old = dict(OLD, epochs=3)
    for epochs in (1, 2):
        assert finished_run_refusal("R", old, dict(old, epochs=epochs), 2) == (
            f"--resume: R holds a run that has trained 2 of its 3 epochs, so --epochs 3 (now {epochs}) would train "
            f"nothing; resume with the run's values, or raise --epochs above 2 to train on")
    assert finished_run_refusal("R", old, dict(old, epochs=3), 2) == ""
    assert finished_run_refusal("R", old, dict(old, epochs=4, lr=0.5), 2) == ""
    # finished: the same count re-tests it, fewer is refused
    assert finished_run_refusal("R", old, dict(old), 3) == ""
    assert finished_run_refusal("R", old, dict(old, epochs=2), 3).startswith(
        "--resume: R holds a run that has trained its 3 epochs, so --epochs 3 (now 2) would train nothing")
