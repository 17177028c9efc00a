"""The ledger audit: recomputes what the cached columns claim and reports every difference.

Used by `manage.py ledger_audit`, the nightly Celery job and the tests (after every step of the
stateful test). Read-only, a few set-based queries; each list of findings is capped so a badly
broken ledger still produces a readable report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.db import execute
from rewards.ledger import statements
from rewards.models import LedgerAccountKind

FINDINGS_SHOWN = 50


@dataclass
class LedgerAuditReport:
    """What the audit found. `problems` is empty when the ledger is sound."""

    problems: list[str] = field(default_factory=list)
    # Coins per kind of account, and the minted total they must add up to.
    totals: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    entries: int = 0

    @property
    def is_balanced(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        summary = ", ".join(f"{kind}={amount}" for kind, amount in sorted(self.totals.items()))
        head = f"ledger audit: {self.transactions} transactions, {self.entries} entries; {summary}"
        if self.is_balanced:
            return [head, "OK: every transaction sums to zero, every cached balance matches its entries."]
        return [head, f"FAILED: {len(self.problems)} problem(s)", *self.problems]


def ledger_audit() -> LedgerAuditReport:
    """Checks the whole ledger; see `LedgerAuditReport`."""
    report = LedgerAuditReport()
    report.transactions = execute(statements.AUDIT_TRANSACTIONS)[0][0]
    report.entries = execute(statements.AUDIT_ENTRIES)[0][0]

    for transaction_id, total, count in execute(statements.AUDIT_UNBALANCED_TRANSACTIONS, [FINDINGS_SHOWN]):
        report.problems.append(f"transaction {transaction_id}: {count} entries summing to {total}, not zero")
    for (transaction_id,) in execute(statements.AUDIT_EMPTY_TRANSACTIONS, [FINDINGS_SHOWN]):
        report.problems.append(f"transaction {transaction_id}: has no entries")

    for account_id, kind, owner_id, cached, actual in execute(
        statements.AUDIT_BALANCES_OFF, [FINDINGS_SHOWN]
    ):
        report.problems.append(
            f"account {account_id} ({kind}:{owner_id}): cached balance {cached}, entries sum to {actual}"
        )
    for account_id, owner_id, balance in execute(
        statements.AUDIT_NEGATIVE_BALANCES, [LedgerAccountKind.ISSUANCE.value, FINDINGS_SHOWN]
    ):
        report.problems.append(f"account {account_id} (owner {owner_id}): negative balance {balance}")

    for account_id, owner_id, balance, in_lots in execute(
        statements.AUDIT_WALLETS_OFF_LOTS, [LedgerAccountKind.WALLET.value, FINDINGS_SHOWN]
    ):
        report.problems.append(
            f"wallet {account_id} (user {owner_id}): balance {balance} but {in_lots} coins left in its lots"
        )

    totals = {kind.value: 0 for kind in LedgerAccountKind}
    for kind, total in execute(statements.AUDIT_TOTALS_BY_KIND):
        totals[kind] = int(total)
    minted = -totals.pop(LedgerAccountKind.ISSUANCE.value)
    held = sum(totals.values())
    report.totals = {**totals, "minted": minted}
    if held != minted:
        report.problems.append(
            f"wallets + projects + merchants + expired = {held}, but {minted} coins were minted "
            f"(difference {held - minted})"
        )
    return report
