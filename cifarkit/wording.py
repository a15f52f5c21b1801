"""Small helpers for the sentences the reports, the estimates and the command line print."""

from __future__ import annotations


def is_one(count) -> bool:
    """Whether ``count`` (an int, a formatted string such as ``"1,200"``, or ``"?"``) reads as the number one."""
    try:
        return float(str(count).replace(",", "")) == 1
    except ValueError:
        return False


def agree(count, one: str, many: str) -> str:
    """The word that agrees with ``count``: ``agree(1, "has", "have")`` is ``"has"``."""
    return one if is_one(count) else many


def series(items) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``; one item alone; ``""`` for none."""
    items = [str(i) for i in items]
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def plural(count, noun: str, many: str | None = None) -> str:
    """``"1 epoch"``, ``"4 epochs"``: ``count`` and ``noun`` in agreement.

    ``count`` is shown as given (an int, a formatted string such as ``"1,200"``, or ``"?"`` when a value is
    missing); it takes the singular only when it reads as the number one. ``many`` is the plural where adding
    ``s`` does not make it (``plural(2, "class", "classes")``).
    """
    return f"{count} {agree(count, noun, many or noun + 's')}"
