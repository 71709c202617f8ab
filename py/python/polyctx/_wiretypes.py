"""Plain data the native wire module returns. No imports of the native
module: it imports this lazily."""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple  # noqa: UP035 (see below)

__all__ = ["BaggageEntry"]


class BaggageEntry(NamedTuple):
    """One W3C baggage member: its value and its properties (`;key` gives
    `("key", None)`, `;key=value` gives `("key", "value")`)."""

    value: str
    # typing's spellings: a NamedTuple's annotations are evaluated on 3.9.
    properties: Tuple[Tuple[str, Optional[str]], ...] = ()  # noqa: UP006, UP045
