# Type stub of the compiled _pricing.pyx (mypy cannot read a built extension). The
# arguments are the state's, the context's and the lines' arrays, then the answer arrays
# it fills: see price_batch in _pricing.pyx and its one caller, engine.pricing.
from typing import Any

CONSTANTS: dict[str, int]

def price_batch(*arrays_and_scalars: Any) -> int: ...
