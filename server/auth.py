"""Bearer-token auth: who is calling, what they may do, for which accounts (DESIGN §8).

``--auth FILE`` points at a JSON file::

    {"tokens": [
      {"token": "portal-secret", "name": "b2b-portal", "scopes": ["read"],
       "accounts": ["ACME", "ACME-EAST"]},
      {"token": "loader-secret", "name": "erp-cdc", "scopes": ["ingest"]},
      {"token": "ops-secret", "name": "ops", "scopes": ["read", "admin"], "accounts": ["*"]}
    ]}

Scopes: ``read`` (quotes, availability, promise, watch, holds), ``ingest`` (Ingest only: a
loader credential cannot read prices), ``admin`` (Admin service). ``accounts`` lists the
accounts a read token may act for (``*``: any). With auth on, the account of a request must
be one of them — it never comes from the request alone.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import InvalidInput
from server.errors import PermissionDenied, Unauthenticated

__all__ = ["ANONYMOUS", "Principal", "TokenTable", "current_principal", "require_account"]

SCOPES = ("read", "ingest", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    name: str
    scopes: frozenset[str]
    accounts: frozenset[str]  # {"*"}: any account

    def may_price_for(self, account: str) -> bool:
        return "*" in self.accounts or account in self.accounts


#: The caller when auth is off: every scope, every account.
ANONYMOUS = Principal("anonymous", frozenset(SCOPES), frozenset({"*"}))
current_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar(
    "current_principal", default=ANONYMOUS
)


def require_account(account: str) -> None:
    """Raise unless the current caller may act for ``account``."""
    if not account:
        raise InvalidInput("account", "missing")
    principal = current_principal.get()
    if not principal.may_price_for(account):
        raise PermissionDenied(f"account: {principal.name} may not act for {account!r}")


class TokenTable:
    """Bearer token → :class:`Principal`, loaded from the auth file."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self._by_token = dict(principals)

    @classmethod
    def from_file(cls, path: str | Path) -> TokenTable:
        data: Any = json.loads(Path(path).read_text())
        table: dict[str, Principal] = {}
        for i, entry in enumerate(data.get("tokens", [])):
            scopes = frozenset(entry.get("scopes", []))
            unknown = scopes - set(SCOPES)
            if unknown:
                raise InvalidInput(
                    f"tokens[{i}].scopes", f"unknown {sorted(unknown)}", "|".join(SCOPES)
                )
            if not entry.get("token"):
                raise InvalidInput(f"tokens[{i}].token", "missing")
            table[entry["token"]] = Principal(
                entry.get("name", f"token-{i}"), scopes, frozenset(entry.get("accounts", []))
            )
        return cls(table)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``authorization`` metadata value (``Bearer <token>``)."""
        if not authorization:
            raise Unauthenticated("authorization: missing bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization: expected 'Bearer <token>'")
        principal = self._by_token.get(token.strip())
        if principal is None:
            raise Unauthenticated("authorization: unknown token")
        return principal
