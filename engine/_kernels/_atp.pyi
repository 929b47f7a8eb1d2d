# Type stub of the compiled _atp.pyx (mypy cannot read a built extension). The arguments
# are the inventory and inbound arrays, the lines, and the answer arrays it fills: see
# availability_batch in _atp.pyx and its one caller, engine.atp.availability.
from typing import Any

CONSTANTS: dict[str, int]

def availability_batch(*arrays_and_scalars: Any) -> None: ...
