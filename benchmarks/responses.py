"""Customers' responses to the vouchers the journeys issued, for a second, closed-loop pass.

The generator's visits do not depend on messages, so a first run of the engine tells which
vouchers each customer received; a second generation of the same chain redeems a share of
them at the customer's first visit inside the voucher's validity. The share is drawn per
voucher from its code, so the result is the same every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from benchmarks.generator import RedemptionHook

DAY_MS = 86_400_000


@dataclass
class _Voucher:
    code: str
    issued_ms: int
    expires_ms: int
    redeemed: bool = False


@dataclass
class VoucherResponses:
    """A redemption hook for the generator, built from the commands of a first run."""

    share: float
    vouchers: dict[str, list[_Voucher]] = field(default_factory=dict)

    def __call__(self, customer_id: str, ts_ms: int) -> str | None:
        for voucher in self.vouchers.get(customer_id, ()):
            if not voucher.redeemed and voucher.issued_ms <= ts_ms <= voucher.expires_ms:
                voucher.redeemed = True
                return voucher.code
        return None


def voucher_responses(commands: Iterable[dict[str, Any]], share: float = 0.45,
                      seed: int = 7) -> RedemptionHook:
    """A hook that redeems about `share` of the vouchers named in `commands`."""
    responses = VoucherResponses(share)
    seen: set[str] = set()
    for command in commands:
        for offer in (command.get("vars") or {}).get("offers", {}).values():
            code = offer["code"]
            if code in seen or not _chosen(code, share, seed):
                continue
            seen.add(code)
            issued = _ms(command["send_at"])
            expires = _end_of_day_ms(offer["expires_on"])
            responses.vouchers.setdefault(command["customer_id"], []).append(
                _Voucher(code, issued, expires))
    for vouchers in responses.vouchers.values():
        vouchers.sort(key=lambda v: (v.expires_ms, v.code))
    return responses


def _chosen(code: str, share: float, seed: int) -> bool:
    digest = hashlib.blake2b(f"{seed}:{code}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _end_of_day_ms(day: str) -> int:
    moment = datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time())
    return int(moment.timestamp() * 1000) + DAY_MS // 2  # the zone is unknown: be generous
