"""Which flags a ``--resume`` may change, and how a refused change is told.

A resumed run continues the run its ``resume.pth`` holds, so every flag that shapes the training must be
the one that run had; the checkpoint keeps them all. A few may differ: where the data and the log are,
what is printed, how images are read, the weights a new run would start from (a resume loads its own),
how long the run goes on, and what a diverged run is told to change before it resumes (a note names each
change that makes the rest of the run differ).
"""
from typing import Dict, List, Tuple

from ..logged_flags import FLAGS_ADDED_LATER
from .flags import default_mining_average, flag_name

__all__ = ["RESUME_MAY_CHANGE", "changed_flags", "refusal", "inexact_notes"]

#: what :data:`~.errors.DIVERGENCE_FIX` tells a diverged run to change before it resumes
CHANGE_TO_RECOVER = ("lr", "trade_off", "ila_trade_off", "ila_temperature")
RESUME_MAY_CHANGE = frozenset({"root", "log", "phase", "resume", "print_freq", "per_class_eval", "cache_images",
                               "workers", "pretrained", "pretrain", "epochs", *CHANGE_TO_RECOVER})


def changed_flags(old: Dict[str, object], new: Dict[str, object]) -> List[Tuple[str, object, object]]:
    """``(dest, before, now)`` for each flag of ``new`` that differs from the resumed run's ``old``, but for
    :data:`RESUME_MAY_CHANGE`. A flag the old run did not know reads as its value of
    :data:`~ila_tllib.logged_flags.FLAGS_ADDED_LATER` (the behaviour it had), or is skipped if it has none."""
    found = []
    for dest, now in new.items():
        if dest in RESUME_MAY_CHANGE or (dest not in old and dest not in FLAGS_ADDED_LATER):
            continue
        before = old.get(dest, FLAGS_ADDED_LATER.get(dest))
        if before != now:
            found.append((dest, before, now))
    return found


def _value(value) -> str:
    if value is None:
        return "not given"
    if isinstance(value, (list, tuple)):
        return " ".join(_value(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _typed(dest: str, value) -> str:
    """The flag as a user types it to get ``value``: ``--seed 0``, ``--randomized``, ``without --randomized``."""
    if value is True:
        return flag_name(dest)
    if value is False or value is None:
        return f"without {flag_name(dest)}"
    return f"{flag_name(dest)} {_value(value)}"


def refusal(path: str, old: Dict[str, object], changes: List[Tuple[str, object, object]]) -> str:
    """The one message of a refused resume: each changed flag with both values, and the flags to add."""
    told = ", ".join(f"{flag_name(dest)} {_value(before)} (now {_value(now)})" for dest, before, now in changes)
    dests = {dest for dest, _, _ in changes}
    # the average's default follows --ila-mining-ema: naming the old decay brings the old average back
    if {"ila_mining_ema", "ila_mining_average"} <= dests and \
            old.get("ila_mining_average") == default_mining_average(old.get("ila_mining_ema", 0.0)):
        dests.discard("ila_mining_average")
    wanted = " ".join(_typed(dest, before) for dest, before, _ in changes if dest in dests)
    return (f"--resume: {path} was written by a run with other flags: {told} (to continue it, add {wanted}); "
            f"resume with the same flags, or use another --log")


def inexact_notes(old: Dict[str, object], new: Dict[str, object]) -> List[str]:
    """What a change the resume allows does to the rest of the run."""
    notes = [f"{flag_name(dest)} {_value(old[dest])} (now {_value(new[dest])}): the rest of the run trains with "
             f"the new value" for dest in CHANGE_TO_RECOVER if dest in old and dest in new and old[dest] != new[dest]]
    if old.get("epochs", new["epochs"]) != new["epochs"]:
        notes.append(f"--epochs {old['epochs']} (now {new['epochs']}): schedules that span the run (ILA-DA's "
                     f"ramp) now span {new['epochs']} epochs, so the rest of the run is not what {new['epochs']} "
                     f"epochs from the start would give")
    if "workers" in old and (old["workers"] == 0) != (new["workers"] == 0):
        notes.append(f"-j {old['workers']} (now {new['workers']}): random transforms (if the transform draws "
                     f"any) are drawn in the main process with -j 0 and by image with worker processes, so the "
                     f"rest of the run differs from either")
    return notes
