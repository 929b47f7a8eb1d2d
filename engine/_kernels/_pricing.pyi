# Type stub of the compiled _pricing.pyx (mypy cannot read a built extension). The
# arguments are the state's, the context's and the lines' arrays, then the answer blocks
# it fills: see _pricing.pyx and its one caller, engine.pricing.
from typing import Any

CONSTANTS: dict[str, int]
BLOCKS: dict[str, int]

class Tables:
    def __init__(self, *arrays: Any) -> None: ...

class Context:
    def __init__(self, *arrays_and_scalars: Any) -> None: ...

def price_batch(tables: Tables, context: Context, *arrays_and_scalars: Any) -> int: ...
