"""A client generated from /api/schema/ by a generator nobody here wrote (openapi-python-client)
imports every operation and gets a person through a short journey against the running server.

The generator runs offline into a temporary folder. Its one setting is the documented
`content_type_overrides`: it has no reader for `image/png` and reads it as the binary
`application/octet-stream` (a `File`), which is what a PNG is to a client.
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import subprocess
import sys
import uuid

import pytest
from django.test import Client
from PIL import Image

from accounts.models import AgreementKind, User
from accounts.services import agreement_publish
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import fund_wallet

PACKAGE = "carbon_account_client"
GENERATOR_CONFIG = "post_hooks: []\ncontent_type_overrides:\n  image/png: application/octet-stream\n"


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    return json.loads(response.content)


@pytest.fixture(scope="module")
def generated(schema, tmp_path_factory):
    """The generated package, importable for this module's tests."""
    folder = tmp_path_factory.mktemp("generated")
    (folder / "schema.json").write_text(json.dumps(schema))
    (folder / "config.yaml").write_text(GENERATOR_CONFIG)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "openapi_python_client", "generate"),
            *("--path", str(folder / "schema.json"), "--config", str(folder / "config.yaml")),
            *("--meta", "none", "--output-path", str(folder / PACKAGE), "--fail-on-warning"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(folder))
    yield importlib.import_module(PACKAGE)
    sys.path.remove(str(folder))
    for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def test_the_generated_client_imports_every_operation_of_the_schema(schema, generated):
    api = importlib.import_module(f"{PACKAGE}.api")
    modules = {
        module.name.rsplit(".", 1)[-1]: importlib.import_module(module.name)
        for module in pkgutil.walk_packages(api.__path__, prefix=f"{PACKAGE}.api.")
        if not module.ispkg
    }

    operation_ids = {
        operation["operationId"]
        for item in schema["paths"].values()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert set(modules) == operation_ids
    assert all(callable(getattr(module, "sync_detailed", None)) for module in modules.values())


def _operation(name: str):
    group = next(
        module.name
        for module in pkgutil.walk_packages(
            importlib.import_module(f"{PACKAGE}.api").__path__, f"{PACKAGE}.api."
        )
        if module.name.endswith(f".{name}")
    )
    return importlib.import_module(group)


@pytest.mark.django_db(transaction=True)
def test_a_person_goes_through_the_generated_client_against_the_running_server(generated, live_server):
    from carbon_account_client import AuthenticatedClient
    from carbon_account_client import Client as AnonymousClient
    from carbon_account_client.models import (
        AcceptedAgreementRequest,
        GuestGuestInputRequest,
        PatchedMeProfileInputRequest,
    )

    for kind in (AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY):
        agreement_publish(kind=kind, version="2026-01", title=kind, url=f"https://example.test/{kind}")
    offer = OfferFactory(title="Oat latte", price_coins=5)
    signed_out = AnonymousClient(base_url=live_server.url)

    # Before any account: the agreements in force, then a guest who accepts them.
    agreements = _operation("agreements_list").sync_detailed(client=signed_out)
    assert agreements.status_code == 200
    guest = _operation("guests_create").sync_detailed(
        client=signed_out,
        body=GuestGuestInputRequest(
            device_id=f"device-{uuid.uuid4().hex}",
            accepted=[
                AcceptedAgreementRequest(kind=agreement.kind, version=agreement.version)
                for agreement in agreements.parsed
            ],
        ),
    )
    assert guest.status_code == 201, guest.content
    assert guest.parsed.user.is_guest is True
    person = AuthenticatedClient(
        base_url=live_server.url,
        token=guest.parsed.meta.session_token,
        prefix="",
        auth_header_name="X-Session-Token",
    )
    fund_wallet(User.objects.get(public_id=guest.parsed.user.public_id), 20)

    # Reads: the wallet, today's carbon, the catalog.
    wallet = _operation("wallet_retrieve").sync_detailed(client=person)
    assert (wallet.status_code, wallet.parsed.balance) == (200, 20)
    today = _operation("activities_today").sync_detailed(client=person)
    assert today.status_code == 200
    assert today.parsed.credited_today_mg == 0
    catalog = _operation("catalog_offers_list").sync_detailed(client=person)
    assert catalog.status_code == 200
    assert [(str(item.id), item.title) for item in catalog.parsed.results] == [
        (str(offer.public_id), "Oat latte")
    ]

    # Writes: a JSON body, and a redemption whose coupon's QR code comes back as a PNG.
    renamed = _operation("me_partial_update").sync_detailed(
        client=person, body=PatchedMeProfileInputRequest(nickname="Leaf")
    )
    assert (renamed.status_code, renamed.parsed.nickname) == (200, "Leaf")
    coupon = _operation("catalog_offers_redeem").sync_detailed(
        offer.public_id, client=person, idempotency_key=f"redeem-{uuid.uuid4().hex}"
    )
    assert coupon.status_code == 201, coupon.content
    qr = _operation("coupons_qr").sync_detailed(coupon.parsed.id, client=person)
    assert qr.status_code == 200
    assert Image.open(io.BytesIO(qr.parsed.payload.read())).format == "PNG"
    wallet = _operation("wallet_retrieve").sync_detailed(client=person)
    assert wallet.parsed.balance == 15
