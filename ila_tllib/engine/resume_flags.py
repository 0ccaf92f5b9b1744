"""Which flags a ``--resume`` may change, and how a refused change is told.

A resumed run continues the run its ``resume.pth`` holds, so every flag that shapes the training must be
the one that run had; the checkpoint keeps them all. A few may differ: where the data and the log are,
what is printed, how images are read, the weights a new run would start from (a resume loads its own),
how long the run goes on, and what a diverged run is told to change before it resumes (a note names each
change that makes the rest of the run differ).
"""
from typing import Dict, List, Tuple

from ..logged_flags import HISTORY_PREFIX, comparable, with_flags_added_later
from .flags import default_mining_average, flag_name

__all__ = ["RESUME_MAY_CHANGE", "CHANGE_TO_RECOVER", "changed_flags", "to_name_back", "refusal", "inexact_notes",
           "flag_history", "history_line", "finished_run_refusal"]

#: what :func:`~.flags.divergence_fix` may tell a diverged run to change before it resumes
CHANGE_TO_RECOVER = ("lr", "trade_off", "ila_trade_off", "ila_temperature")
RESUME_MAY_CHANGE = frozenset({"root", "log", "phase", "resume", "print_freq", "per_class_eval", "cache_images",
                               "workers", "pretrained", "pretrain", "epochs", *CHANGE_TO_RECOVER})


def changed_flags(old: Dict[str, object], new: Dict[str, object]) -> List[Tuple[str, object, object]]:
    """``(dest, before, now)`` for each flag of ``new`` that differs from the resumed run's ``old``, but for
    :data:`RESUME_MAY_CHANGE`. A flag the old run did not know reads as its value of
    :data:`~ila_tllib.logged_flags.FLAGS_ADDED_LATER` (the behaviour it had), or is skipped if it has none.
    ``--ila-trade-off`` may be lowered, not to 0 (nor raised from it): that switches ILA-DA off (or on), and
    with it the batches and the defaults that follow it; that change alone is named."""
    before, now = old.get("ila_trade_off"), new.get("ila_trade_off")
    if before is not None and now is not None and (before == 0) != (now == 0):
        return [("ila_trade_off", before, now)]
    found, old = [], with_flags_added_later(old)
    for dest, now in new.items():
        if dest in RESUME_MAY_CHANGE or dest not in old:
            continue
        before = old[dest]
        if comparable(before) != comparable(now):
            found.append((dest, before, now))
    return found


def _value(value) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return " ".join(_value(v) for v in value)
    if isinstance(value, float):   # short where that is exact, every digit otherwise: it can be typed back
        return f"{value:g}" if float(f"{value:g}") == value else repr(value)
    return str(value)


def to_name_back(changed: List[str], old: Dict[str, object]) -> List[str]:
    """Which of the ``changed`` flags a resume must name to bring the ``old`` run's values back: all but
    those whose default follows another one named (--ila-mining-average follows --ila-mining-ema)."""
    follows = "ila_mining_ema" in changed and \
        old.get("ila_mining_average") == default_mining_average(old.get("ila_mining_ema", 0.0))
    return [dest for dest in changed if not (follows and dest == "ila_mining_average")]


def refusal(path: str, old: Dict[str, object], changes: List[Tuple[str, object, object]]) -> str:
    """The one message of a refused resume: each changed flag with both values, and the flags to add or drop."""
    told = ", ".join(f"{flag_name(dest)} {_value(before)} (now {_value(now)})" for dest, before, now in changes)
    dests = to_name_back([dest for dest, _, _ in changes], old)
    back = [(dest, before) for dest, before, _ in changes if dest in dests]
    add = " ".join(flag_name(dest) if before is True else f"{flag_name(dest)} {_value(before)}"
                   for dest, before in back if before is not None and before is not False)
    drop = " ".join(flag_name(dest) for dest, before in back if before is None or before is False)
    how = " and ".join(part for part in (add and f"add {add}", drop and f"drop {drop}") if part)
    return (f"--resume: {path} was written by a run with other flags: {told} (to continue it, {how}); "
            f"resume with the same flags, or use another --log")


def _schedule_spans_the_run(flags: Dict[str, object]) -> bool:
    """Whether a schedule follows the run's progress (ILA's weight or kept fraction): tllib's learning rate and
    reversal layers follow the iteration alone, so without one more epochs continue the run exactly."""
    return flags.get("ila_trade_off", 0) > 0 and (flags.get("ila_schedule", "ramp") != "step"
                                                   or flags.get("ila_keep_schedule", "step") != "step")


def _changed_remedies(old: Dict[str, object], new: Dict[str, object]) -> List[str]:
    """The flags of :data:`CHANGE_TO_RECOVER` whose value differs."""
    return [dest for dest in CHANGE_TO_RECOVER if dest in old and dest in new and comparable(old[dest]) != comparable(new[dest])]


def _trains_otherwise(old: Dict[str, object], new: Dict[str, object]) -> List[str]:
    """The allowed changes after which the rest of the run trains otherwise than the run began: a diverged
    run's remedies (ILA-DA's only where it runs), and --epochs where a schedule spans the run."""
    ila_runs = new.get("ila_trade_off", 0) > 0
    dests = [dest for dest in _changed_remedies(old, new) if ila_runs or not dest.startswith("ila_")]
    if old.get("epochs", new["epochs"]) != new["epochs"] and _schedule_spans_the_run(new):
        dests.append("epochs")
    return dests


def flag_history(earlier: Dict[str, list], old: Dict[str, object], new: Dict[str, object],
                 epoch: int) -> Dict[str, list]:
    """flag -> ``[value, epoch]`` pairs, oldest first: each value the run had before its current one and the
    epoch (counted from 0, as the training lines) from which the next one applied. ``earlier`` is what the
    checkpoint kept from earlier resumes; this resume, at ``epoch``, adds its changes."""
    history = {dest: [list(pair) for pair in pairs] for dest, pairs in earlier.items()}
    for dest in _trains_otherwise(old, new):
        history.setdefault(dest, []).append([old[dest], epoch])
    return history


def history_line(history: Dict[str, list], new: Dict[str, object]) -> str:
    """``flags over the run: --lr 0.01 -> 0.005 at epoch 2``: every value each changed flag has had, and the
    epoch from which each next one applied; the current value last."""
    def told(dest, pairs):
        steps = [_value(pairs[0][0])] + [f"{_value(value)} at epoch {epoch}" for (_, epoch), (value, _)
                                         in zip(pairs, pairs[1:] + [[new[dest], None]])]
        return f"{flag_name(dest)} " + " -> ".join(steps)
    return HISTORY_PREFIX + ", ".join(told(dest, pairs) for dest, pairs in history.items())


def finished_run_refusal(path: str, old: Dict[str, object], new: Dict[str, object], epochs_done: int) -> str:
    """The message refusing a changed remedy (``--lr`` ...) on a run that has trained all the epochs ``new``
    asks for (it would train nothing with it), or another ``--epochs`` at or below the epochs trained (it would
    only relabel the run, finished or not); "" when nothing of the kind changed."""
    if epochs_done < new["epochs"]:
        return ""
    changed = _changed_remedies(old, new)
    # an --epochs of its own at or below the epochs done: the run would end as it is, under another count
    relabelled = "epochs" in old and old["epochs"] != new["epochs"]
    if not changed and not relabelled:
        return ""
    told = ", ".join(f"{flag_name(dest)} {_value(old[dest])} (now {_value(new[dest])})"
                     for dest in changed + (["epochs"] if relabelled else []))
    fix = ("raise --epochs to train on with the new ones" if changed
           else f"raise --epochs above {epochs_done} to train on")
    trained = (f"its {epochs_done} epochs" if old.get("epochs", epochs_done) == epochs_done
               else f"{epochs_done} of its {old['epochs']} epochs")
    return (f"--resume: {path} holds a run that has trained {trained}, so {told} would train "
            f"nothing; resume with the run's values, or {fix}")


def inexact_notes(old: Dict[str, object], new: Dict[str, object]) -> List[str]:
    """What a change the resume allows does to the rest of the run."""
    changed = _trains_otherwise(old, new)
    notes = [f"{flag_name(dest)} {_value(old[dest])} (now {_value(new[dest])}): the rest of the run trains with "
             f"the new value" for dest in changed if dest in CHANGE_TO_RECOVER]
    if "epochs" in changed:
        epochs = f"{new['epochs']} epoch" + ("s" if new["epochs"] != 1 else "")
        notes.append(f"--epochs {old['epochs']} (now {new['epochs']}): schedules that span the run (ILA-DA's "
                     f"schedule) now span {epochs}, so the rest of the run is not what {epochs} from the start "
                     f"would give")
    if "workers" in old and (old["workers"] == 0) != (new["workers"] == 0):
        notes.append(f"-j {old['workers']} (now {new['workers']}): random transforms (if the transform draws "
                     f"any) are drawn in the main process with -j 0 and by image with worker processes, so the "
                     f"rest of the run differs from either")
    return notes
