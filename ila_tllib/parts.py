"""Name → class tables of ILA-DA's swappable parts, and building a part from the settings it takes.

Each table (``SIMILARITIES``, ``PSEUDO_LABELLERS``, ``METRIC_LOSSES``, ...) maps a name to a class; the
scripts use the keys as argparse ``choices``. A part is built with the settings its constructor names
(``k`` and ``m`` for the kNN labeller, ``temperature`` for MSC); settings it does not take are not
passed, so one set of flags can build any part of a table.
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
    """``table[name](**the settings it takes)``; a module passes through unchanged."""
    if isinstance(name, nn.Module):
        return name
    cls = lookup(table, name, kind)
    return cls(**{key: value for key, value in settings.items() if takes(table, name, key) and value is not None})
