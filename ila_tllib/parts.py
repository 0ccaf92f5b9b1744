"""Name → class tables of ILA-DA's swappable parts, and building a part from the settings it takes.

Each table (``SIMILARITIES``, ``PSEUDO_LABELLERS``, ``METRIC_LOSSES``, ...) maps a name to a class; the
scripts use the keys as argparse ``choices``. A part is built with the settings its constructor names
(``k`` and ``m`` for the kNN labeller, ``temperature`` for MSC); a setting left ``None`` keeps the
constructor's default, and one given to a part that does not take it is refused, never dropped.
"""
import inspect
from typing import Mapping

import torch.nn as nn

__all__ = ["lookup", "takes", "build_part"]


def lookup(table: Mapping[str, type], name: str, kind: str) -> type:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {sorted(table)}") from None


def takes(table: Mapping[str, type], name: str, setting: str) -> bool:
    """Whether the part ``table[name]`` is built with ``setting`` (its constructor names it)."""
    return setting in inspect.signature(lookup(table, name, "part")).parameters


def build_part(table: Mapping[str, type], name, kind: str, **settings) -> nn.Module:
    """``table[name](**settings)``, the settings given ``None`` left out (the constructor's defaults); a module
    passes through unchanged. A setting given that the part does not take, or given next to a module, raises
    a ValueError naming it: a setting silently dropped would run another recipe than the one asked for."""
    given = [key for key, value in settings.items() if value is not None]
    if isinstance(name, nn.Module):
        if given:
            raise ValueError(f"{_listed(given)} {'is a setting' if len(given) == 1 else 'are settings'} of the "
                             f"{kind} built by name; with a {kind} module, give {_it(given)} to that module")
        return name
    cls = lookup(table, name, kind)
    dropped = [key for key in given if not takes(table, name, key)]
    if dropped:
        raise ValueError(f"the {kind} {name!r} takes no {' and no '.join(dropped)}: leave {_it(dropped)} out, "
                         f"or choose a {kind} that takes {_it(dropped)}")
    return cls(**{key: settings[key] for key in given})


def _listed(names) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _it(names) -> str:
    return "it" if len(names) == 1 else "them"
