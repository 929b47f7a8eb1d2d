# Type stub of the compiled _codes.pyx (mypy cannot read a built extension); see
# engine.codes.CodeTable, its one caller.
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

def find(
    arena: npt.NDArray[np.uint8], slots: npt.NDArray[np.uint64], n: int, code: object
) -> int: ...
def find_many(
    arena: npt.NDArray[np.uint8],
    slots: npt.NDArray[np.uint64],
    n: int,
    codes: Sequence[object],
    out: npt.NDArray[np.int64],
) -> None: ...
def insert_range(
    arena: npt.NDArray[np.uint8], slots: npt.NDArray[np.uint64], start: int, stop: int
) -> None: ...
def put(
    arena: npt.NDArray[np.uint8], slots: npt.NDArray[np.uint64], row: int, code: str
) -> None: ...
def decode(arena: npt.NDArray[np.uint8], n: int, ids: npt.NDArray[np.int64]) -> list[str]: ...
def decode_range(arena: npt.NDArray[np.uint8], start: int, stop: int) -> list[str]: ...
