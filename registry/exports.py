"""The package a lot is submitted to the exchange with: `lot.csv`, `lot.json` and `manifest.json`,
the manifest signed with the platform's Ed25519 key (PLATFORM_ED25519_SIGNING_KEYS).

The manifest is canonical JSON (keys sorted, no spaces, UTF-8) naming each file's SHA-256; the
signature is Ed25519 over the manifest's exact bytes, base64url without padding, under the key id the
manifest names. docs/registry.md shows how the exchange verifies it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import zipfile

from django.utils import timezone

from core.crypto.keyring import keyring
from core.crypto.platform_keys import ed25519_signing_keys
from registry.models import LotBehaviour, ReductionLot
from registry.selectors import lot_commitment

FORMAT = "carbon-registry-lot/1"


def _canonical(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def lot_document(*, lot: ReductionLot) -> dict:
    """The lot as the exchange reads it: identity, period, serials, volume, methodology, commitment."""
    behaviours = LotBehaviour.objects.filter(lot=lot).select_related("behaviour", "methodology_version")
    return {
        "lot_id": str(lot.public_id),
        "title": lot.title,
        "period": {"from": lot.period_start.isoformat(), "to": lot.period_end.isoformat()},
        "volume_mg": lot.volume_mg,
        "tonnes": lot.tonnes,
        "serials": {"first": lot.serial_first, "last": lot.serial_last},
        "contributors": lot.contributor_count,
        "merkle_root": lot.merkle_root,
        "methodology": sorted(
            (
                {"behaviour": item.behaviour.code, "methodology_version": item.methodology_version.number}
                for item in behaviours
            ),
            key=lambda item: item["behaviour"],
        ),
    }


def contributions_csv(*, lot: ReductionLot) -> str:
    """The published contribution list, in leaf order: what anyone can recompute the root from."""
    rows, _hashes = lot_commitment(lot=lot)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["lot_id", "contributor_id", "carbon_mg"])
    for contributor, carbon in rows:
        writer.writerow([str(lot.public_id), contributor, carbon])
    return buffer.getvalue()


def export_package_build(*, lot: ReductionLot) -> dict:
    """The fields of a `LotExport`: the files, the manifest and its signature."""
    document = lot_document(lot=lot)
    lot_json = _canonical(document)
    lot_csv = contributions_csv(lot=lot)
    keyring("PLATFORM_ED25519_SIGNING_KEYS").current  # noqa: B018 - raises when none is configured
    key_id, private_key = ed25519_signing_keys()[0]
    manifest = {
        "format": FORMAT,
        "lot_id": str(lot.public_id),
        "issued_at": timezone.now().replace(microsecond=0).isoformat(),
        "key_id": key_id,
        "algorithm": "Ed25519",
        "files": {"lot.csv": _digest(lot_csv), "lot.json": _digest(lot_json)},
    }
    manifest_json = _canonical(manifest)
    signature = base64.urlsafe_b64encode(private_key.sign(manifest_json.encode())).rstrip(b"=").decode()
    return {
        "lot_csv": lot_csv,
        "lot_json": lot_json,
        "manifest_json": manifest_json,
        "signature": signature,
        "key_id": key_id,
    }


def export_zip(*, export) -> bytes:
    """The package as one zip: lot.csv, lot.json, manifest.json, manifest.sig."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("lot.csv", export.lot_csv)
        archive.writestr("lot.json", export.lot_json)
        archive.writestr("manifest.json", export.manifest_json)
        archive.writestr("manifest.sig", export.signature)
    return buffer.getvalue()
