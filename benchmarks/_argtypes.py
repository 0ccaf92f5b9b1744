"""argparse types shared by the benchmark scripts (a module, not a script): a count or a fraction out of
range ends the script with exit 2 and argparse's one-line message naming the flag, before any work."""
import argparse

__all__ = ["at_least", "fraction"]


def at_least(low: int):
    """An ``int`` type that refuses values below ``low``."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    parse.__name__ = "int"      # argparse names the type in "invalid int value"
    return parse


def fraction(text: str) -> float:
    """A ``float`` in (0, 1], as the ratio test's μ."""
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie in (0, 1], got {value}")
    return value
