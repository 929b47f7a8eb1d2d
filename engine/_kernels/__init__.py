"""Compiled kernels of the engine (Cython 3, built at install by setuptools; see README).

One concept per ``.pyx`` beside the Python module that calls it: ``_money`` for
``engine.money``, ``_pricing`` for ``engine.pricing``, ``_atp`` for ``engine.atp``;
``exact.h`` holds the 128-bit money arithmetic the first two use. They read the state's
arrays through typed memoryviews (shared-memory mappings included) and run without the GIL
inside their loops. ``CHECKED`` says whether this build has bounds checks on
(``make test-checked``).
"""

from engine._kernels._money import CHECKED

__all__ = ["CHECKED"]
