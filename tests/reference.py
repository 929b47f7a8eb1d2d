"""The reference model lives in ``bench.reference`` (the baselines answer with it too);
tests import it from here as before."""

from bench.reference import *  # noqa: F403
from bench.reference import __all__  # noqa: F401
