"""Exact money arithmetic on integer arrays (DESIGN §3).

Amounts are ``int64`` micros (10^-6 of the currency's major unit). Rounding is half away from
zero. Products are formed in 128 bits by the compiled kernels (``engine/_kernels/exact.h``),
so one that does not fit in ``int64`` is computed exactly, never wrapped; a *result* that
does not fit is reported through a mask so the caller can flag the line instead of
returning a wrong number.
Floats never hold money here.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from engine._kernels._money import mul_div_round_into
from engine.errors import InvalidInput

__all__ = [
    "CURRENCY_EXPONENTS",
    "INT64_MAX",
    "ISO_4217",
    "MICROS",
    "check_currency",
    "div_round",
    "micros_per_minor_unit",
    "mul_div_round",
    "round_scalar",
]

I64 = npt.NDArray[np.int64]
MICROS = 1_000_000
INT64_MAX = np.iinfo(np.int64).max

#: ISO 4217 minor-unit exponents. Currencies not listed default to 2.
CURRENCY_EXPONENTS: dict[str, int] = {
    "BHD": 3, "BIF": 0, "CLF": 4, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0,
    "JOD": 3, "JPY": 0, "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0,
    "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "UYW": 4, "VND": 0, "VUV": 0, "XAF": 0,
    "XOF": 0, "XPF": 0,
}  # fmt: skip


#: ISO 4217 alpha-3 codes in use (the list of 2025, with XCG, ZWG and VED). Left out on
#: purpose: XXX ("no currency"), XTS (testing), precious metals (XAU, XAG, XPD, XPT) and
#: the units without a minor unit (XDR, XSU, XUA, XBA…): nothing a distributor quotes in.
ISO_4217: frozenset[str] = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL
    BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP
    STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
    VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()  # noqa: SIM905  # a table to read
)


def check_currency(currency: str, field: str = "currency") -> str:
    """``currency`` if it is an ISO 4217 code in use (:data:`ISO_4217`); otherwise
    :class:`InvalidInput` naming ``field`` (``usd``, ``XXX`` or ``EURO`` are a caller's
    mistake, not a request for lines without a price)."""
    if currency not in ISO_4217:
        shown = repr(currency[:8]) + ("…" if len(currency) > 8 else "")
        raise InvalidInput(field, f"{shown} is not an ISO 4217 currency in use", "e.g. USD, EUR")
    return currency


def micros_per_minor_unit(currency: str) -> int:
    """How many micros make one minor unit of ``currency`` (USD → 10,000; JPY → 1,000,000)."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    if exponent > 6:
        raise InvalidInput("currency", f"{currency} has {exponent} decimals", "at most 6")
    return int(10 ** (6 - exponent))


def round_scalar(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero; exact Python ints."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def div_round(numerator: I64, denominator: I64) -> I64:
    """Element-wise ``numerator / denominator`` rounded half away from zero.

    ``denominator`` must be positive and below 2^62 (so ``2 * remainder`` cannot wrap).
    With floor division ``n = q·d + r`` (0 ≤ r < d), half away from zero is ``q + 1`` when
    ``2r > d``, or when ``2r == d`` and ``n ≥ 0``: one test, ``2r + [n ≥ 0] > d``.
    """
    quotient, remainder = np.divmod(numerator, denominator)
    quotient += 2 * remainder + (numerator >= 0) > denominator
    return quotient


def mul_div_round(
    a: I64, b: I64, denominator: I64, step: int = 1
) -> tuple[I64, npt.NDArray[np.bool_]]:
    """``round(a * b / denominator / step) * step`` exactly, element-wise (broadcasting).

    ``step`` rounds to a coarser unit (micros per minor unit for extended amounts).
    Returns ``(result, ok)``; where ``ok`` is False the exact result does not fit in int64
    micros and ``result`` holds 0 there. Products are formed in 128 bits by the compiled
    kernel (``engine._kernels._money``), so nothing wraps and no row falls back to Python
    integers. O(n).
    """
    a, b, den = np.broadcast_arrays(
        np.asarray(a, dtype=np.int64),
        np.asarray(b, dtype=np.int64),
        np.asarray(denominator, dtype=np.int64),
    )
    shape = a.shape
    flat_a, flat_b, flat_den = (np.ascontiguousarray(x).reshape(-1) for x in (a, b, den))
    result = np.empty(flat_a.size, dtype=np.int64)
    ok = np.empty(flat_a.size, dtype=np.uint8)
    mul_div_round_into(flat_a, flat_b, flat_den, step, result, ok)
    return result.reshape(shape), ok.view(np.bool_).reshape(shape)
