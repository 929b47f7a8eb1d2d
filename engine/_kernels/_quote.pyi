# Type stub of the compiled _quote.pyx (mypy cannot read a built extension). The arguments
# are the state's arrays (Tables, made by engine.tables), one account context's (Context,
# made by engine.pricing), the request's lines and the answer blocks the kernel fills: see
# quote_batch in _quote.pyx and its one caller, engine.quote.
from typing import Any

CONSTANTS: dict[str, int]
QUOTE_CONSTANTS: dict[str, int]
LINE_ROWS: dict[str, int]

class Tables:
    def __init__(self, *arrays: Any) -> None: ...

class Context:
    def __init__(self, *arrays_and_scalars: Any) -> None: ...

def quote_batch(tables: Tables, context: Context | None, *arrays_and_scalars: Any) -> int: ...
def availability_batch(tables: Tables, *arrays_and_scalars: Any) -> None: ...
def lower_bound(keys: Any, key: int, guided: bool) -> int: ...
