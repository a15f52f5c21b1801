"""The exception raised for data that cannot be used."""

from __future__ import annotations


class DataError(ValueError):
    """Data that exists but cannot be used: corrupt, unsafe, or laid out wrongly.

    Missing paths raise ``FileNotFoundError`` instead; invalid arguments raise
    ``ValueError``. The message says what was wrong and what to do about it.
    """
