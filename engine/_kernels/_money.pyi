# Type stub of the compiled _money.pyx (mypy cannot read a built extension).
import numpy as np
import numpy.typing as npt

CHECKED: bool

def mul_div_round_into(
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    denominator: npt.NDArray[np.int64],
    step: int,
    out: npt.NDArray[np.int64],
    ok: npt.NDArray[np.uint8],
) -> None: ...
