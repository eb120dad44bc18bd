"""Quantities as people read them."""

from __future__ import annotations


def human_bytes(amount: float) -> str:
    """``0 B``, ``634.0 KB``, ``1.5 MB``: binary multiples, as the vendor prints them."""
    if amount < 1024:
        return f"{int(amount)} B"
    for unit in ("KB", "MB", "GB", "TB", "PB"):
        amount /= 1024
        if amount < 1024 or unit == "PB":
            break
    return f"{amount:.1f} {unit}"
