"""The ledger audit: recomputes what the cached columns claim and reports every difference.

Used by `manage.py ledger_audit`, the nightly Celery job and the tests (after every step of the
stateful test). Read-only, a few set-based queries; each list of findings is capped so a badly
broken ledger still produces a readable report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.db import execute
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
    report.transactions = execute("SELECT COUNT(*) FROM rewards_ledgertransaction")[0][0]
    report.entries = execute("SELECT COUNT(*) FROM rewards_ledgerentry")[0][0]

    for transaction_id, total, count in execute(
        """
        SELECT transaction_id, SUM(amount), COUNT(*) FROM rewards_ledgerentry
        GROUP BY transaction_id HAVING SUM(amount) <> 0 OR COUNT(*) < 2
        ORDER BY transaction_id LIMIT %s
        """,
        [FINDINGS_SHOWN],
    ):
        report.problems.append(f"transaction {transaction_id}: {count} entries summing to {total}, not zero")
    for (transaction_id,) in execute(
        """
        SELECT id FROM rewards_ledgertransaction AS ledger_transaction
        WHERE NOT EXISTS (SELECT 1 FROM rewards_ledgerentry WHERE transaction_id = ledger_transaction.id)
        ORDER BY id LIMIT %s
        """,
        [FINDINGS_SHOWN],
    ):
        report.problems.append(f"transaction {transaction_id}: has no entries")

    for account_id, kind, owner_id, cached, actual in execute(
        """
        SELECT account.id, account.kind, account.owner_id, account.balance, COALESCE(sums.total, 0)
        FROM rewards_ledgeraccount AS account
        LEFT JOIN (
            SELECT account_id, SUM(amount) AS total FROM rewards_ledgerentry GROUP BY account_id
        ) AS sums ON sums.account_id = account.id
        WHERE account.balance <> COALESCE(sums.total, 0)
        ORDER BY account.id LIMIT %s
        """,
        [FINDINGS_SHOWN],
    ):
        report.problems.append(
            f"account {account_id} ({kind}:{owner_id}): cached balance {cached}, entries sum to {actual}"
        )
    for account_id, owner_id, balance in execute(
        "SELECT id, owner_id, balance FROM rewards_ledgeraccount WHERE balance < 0 AND kind <> %s LIMIT %s",
        [LedgerAccountKind.ISSUANCE.value, FINDINGS_SHOWN],
    ):
        report.problems.append(f"account {account_id} (owner {owner_id}): negative balance {balance}")

    for account_id, owner_id, balance, in_lots in execute(
        """
        SELECT account.id, account.owner_id, account.balance, COALESCE(lots.remaining, 0)
        FROM rewards_ledgeraccount AS account
        LEFT JOIN (
            SELECT account_id, SUM(remaining_amount) AS remaining FROM rewards_coinlot GROUP BY account_id
        ) AS lots ON lots.account_id = account.id
        WHERE account.kind = %s AND account.balance <> COALESCE(lots.remaining, 0)
        ORDER BY account.id LIMIT %s
        """,
        [LedgerAccountKind.WALLET.value, FINDINGS_SHOWN],
    ):
        report.problems.append(
            f"wallet {account_id} (user {owner_id}): balance {balance} but {in_lots} coins left in its lots"
        )

    totals = {kind.value: 0 for kind in LedgerAccountKind}
    for kind, total in execute(
        "SELECT kind, COALESCE(SUM(balance), 0) FROM rewards_ledgeraccount GROUP BY kind"
    ):
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
