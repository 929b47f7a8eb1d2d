"""Build of the compiled modules (engine/_kernels/*.pyx, the engine's kernels, and
server/_wire.pyx, the wire encoder of the hot answers); metadata is in pyproject.

setuptools + Cython (see README "Dependencies" for why not meson-python). Environment:

- ``PACACHE_KERNEL_CHECKS=1``: bounds checks, wraparound and initialised-view checks on,
  ``-O1 -g``, and ``engine._kernels.CHECKED`` true (``make test-checked``);
- ``PACACHE_KERNEL_SANITIZE=1`` (with checks): also ``-fsanitize=address,undefined``.
"""

from __future__ import annotations

import os
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup

CHECKED = os.environ.get("PACACHE_KERNEL_CHECKS") == "1"
SANITIZE = CHECKED and os.environ.get("PACACHE_KERNEL_SANITIZE") == "1"
KERNELS = Path("engine/_kernels")

compile_args = ["-O1", "-g", "-fno-omit-frame-pointer"] if CHECKED else ["-O3"]
link_args: list[str] = []
macros = [("PACACHE_CHECKED", "1" if CHECKED else "0")]
if SANITIZE:
    sanitizers = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
    compile_args += sanitizers
    link_args += sanitizers

extensions = [
    Extension(
        f"engine._kernels.{source.stem}",
        [str(source)],
        include_dirs=[str(KERNELS)],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for source in sorted(KERNELS.glob("*.pyx"))
] + [
    Extension(
        "server._wire",
        ["server/_wire.pyx"],
        include_dirs=["server"],
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": CHECKED,
            "wraparound": CHECKED,
            "initializedcheck": CHECKED,
            # C division: the kernels never divide by a value they have not checked
            "cdivision": True,
            "embedsignature": True,
        },
        # the checked build lives in its own tree; keep its generated C apart as well
        build_dir="build/cython-checked" if CHECKED else None,
    )
)
