"""The lot's commitment over its contribution list: a Merkle tree of SHA-256 (docs/registry.md).

- Leaf line: `<lot public id>|<contributor id>|<carbon mg>` in UTF-8, e.g.
  `3f0c…-…|9a1b…|1234567` (the lot's UUID in its lowercase hyphenated form, the 32-hex-digit pseudonym,
  the grams in milligrams as a decimal integer).
- Leaf hash: SHA-256(0x00 ‖ line). Node hash: SHA-256(0x01 ‖ left ‖ right) — the prefixes keep a
  leaf from passing for a node (as RFC 6962 does).
- Leaves are ordered by contributor id (bytewise); each level pairs neighbours left to right, and an
  odd node at the end of a level moves up unchanged (it is never paired with itself).
- The root of no leaves is SHA-256 of nothing.
A proof is the list of sibling hashes from the leaf up, each marked as standing left or right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def leaf_line(*, lot_id: str, contributor_id: str, carbon_mg: int) -> bytes:
    return f"{lot_id}|{contributor_id}|{carbon_mg}".encode()


def leaf_hash(line: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + line).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def merkle_root(leaves: Iterable[bytes]) -> str:
    """The root (hex) over leaf hashes in their order."""
    level = list(leaves)
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        level = _next_level(level)
    return level[0].hex()


def merkle_proof(leaves: list[bytes], index: int) -> list[dict[str, str]]:
    """The path from leaf `index` to the root: [{"side": "left"|"right", "hash": hex}, …]."""
    path: list[dict[str, str]] = []
    level = leaves
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append({"side": "left" if sibling < index else "right", "hash": level[sibling].hex()})
        level = _next_level(level)
        index //= 2
    return path


def proof_verify(*, line: bytes, proof: list[dict[str, str]], root: str) -> bool:
    """What a contributor runs (docs/registry.md prints the same few lines)."""
    current = leaf_hash(line)
    for step in proof:
        sibling = bytes.fromhex(step["hash"])
        current = node_hash(sibling, current) if step["side"] == "left" else node_hash(current, sibling)
    return current.hex() == root
