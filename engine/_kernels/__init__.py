"""Compiled kernels of the engine (Cython 3, built at install by setuptools; see README).

- ``_quote``: one quote, whole (codes, UoMs, statuses, sell rules, prices, availability,
  disclosure) for ``engine.quote``; also the availability step alone for ``engine.atp``;
- ``_codes``: the code tables' hash index (``engine.codes``; ``codeindex.h`` holds the
  lookup the quote kernel shares);
- ``_money``: exact money helpers for ``engine.money``; ``exact.h`` holds the 128-bit
  arithmetic it and the quote kernel use.

They read the state's arrays through typed memoryviews (shared-memory mappings included)
and run without the GIL inside their loops. ``CHECKED`` says whether this build has bounds
checks on (``make test-checked``).
"""

from engine._kernels._money import CHECKED

__all__ = ["CHECKED"]
