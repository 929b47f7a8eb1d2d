# Type stub of the compiled wire encoder (server/_wire.pyx).
from typing import Any

import numpy as np
import numpy.typing as npt

KIND_QUOTE: int
KIND_PRICES: int
KIND_AVAILABILITY: int

class Codes:
    def __init__(
        self,
        contracts: npt.NDArray[np.uint8],
        n_contracts: int,
        price_lists: npt.NDArray[np.uint8],
        n_price_lists: int,
        groups: npt.NDArray[np.uint8],
        n_groups: int,
        uoms: npt.NDArray[np.uint8],
        n_uoms: int,
        locations: npt.NDArray[np.uint8],
        n_locations: int,
        base_uom: npt.NDArray[np.int16],
    ) -> None: ...
    def arenas(self) -> dict[str, tuple[npt.NDArray[np.uint8], int]]: ...
    def base_uom_of(self, sku: int) -> int | None: ...

def encode_answer(*inputs: Any) -> bytes: ...
def wrap(field: int, head: bytes, message: bytes) -> bytes: ...
def decode_lines(message: bytes, field: int, max_lines: int, max_line_id: int) -> Any: ...
