"""docs/interop.md as written: its JSON Schema is the one the code checks, its mapping table is the
migration's defaults, and its Python and JavaScript verifiers accept a statement our live server
issued (and refuse a changed one, or one for another platform)."""

from __future__ import annotations

import datetime
import importlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import requests

from accounts.models import DataSource
from activities.statements.schema import STATEMENT_SCHEMA
from core.local_time import LOCAL_TZ
from tests.activities.conftest import ride
from tests.activities.peer_platform import last_month
from tests.conftest import session_token_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "interop.md"
PEER = "https://green-commute.example.cn"
JOSE = "6.2.19"
NODE_DIR = Path(tempfile.gettempdir()) / f"carbon-account-interop-jose-{JOSE}"


def block(name: str, language: str) -> str:
    match = re.search(
        rf"<!-- example: {name} -->\n```{language}\n(.*?)```\n<!-- /example -->", DOC.read_text(), re.S
    )
    assert match, f"docs/interop.md has no {name} example"
    return match[1]


def test_the_doc_s_schema_is_the_one_the_code_checks():
    match = re.search(r"<!-- schema -->\n```json\n(.*?)```\n<!-- /schema -->", DOC.read_text(), re.S)

    assert json.loads(match[1]) == STATEMENT_SCHEMA


def test_the_doc_s_mapping_is_the_default_of_the_methodology():
    table = DOC.read_text().split("<!-- mapping -->")[1].split("<!-- /mapping -->")[0]
    rows = [line.split("|")[1:-1] for line in table.strip().splitlines()[2:]]
    documented = {
        cells[1].strip().strip("`"): (
            cells[2].strip(),
            cells[3].split("(")[0].strip().replace(" ", "_"),
            cells[4].strip(),
        )
        for cells in rows
    }
    migration = importlib.import_module("activities.migrations.0012_statements_and_standard_references")

    assert documented == {
        code: (migration.STANDARD, category, name)
        for code, (category, name) in migration.STANDARD_REFERENCES.items()
    }


@pytest.fixture
def issued(live_server, settings, rider, transit, post_batch, authorize) -> dict:
    """A statement our live server issued for PEER, with the rider's two bus rides of last month."""
    settings.ACTIVITIES_PARTNER_WINDOW_DAYS = 120
    settings.STATEMENTS_ISSUER = live_server.url
    authorize(rider, DataSource.TRANSIT_CARD)
    day = last_month().replace(day=15)
    rides = [
        ride(f"R{hour}", at=datetime.datetime.combine(day, datetime.time(hour), tzinfo=LOCAL_TZ))
        for hour in (8, 18)
    ]
    assert post_batch(transit, rides).json()["accepted"] == 2
    answer = requests.get(
        f"{live_server.url}/api/v1/me/statements",
        params={"period": day.strftime("%Y-%m"), "audience": PEER},
        headers={"X-Session-Token": session_token_for(rider)},
        timeout=10,
    )
    answer.raise_for_status()
    return {
        **answer.json(),
        "issuer": live_server.url,
        "jwks_url": f"{live_server.url}/.well-known/jwks.json",
    }


def _changed(token: str) -> str:
    header, payload, signature = token.split(".")
    return f"{header}.{payload[:-4]}{'AAAA' if payload[-4:] != 'AAAA' else 'BBBB'}.{signature}"


@pytest.mark.django_db(transaction=True)
def test_the_python_verifier_accepts_our_statement_and_nothing_else(issued):
    namespace: dict = {}
    exec(compile(block("verify-python", "python"), f"{DOC}:verify-python", "exec"), namespace)  # noqa: S102
    verify = namespace["verify_statement"]

    claims = verify(issued["statement"], issued["jwks_url"], issued["issuer"], PEER)

    assert claims == issued["claims"]
    assert claims["total_carbon_mg"] == 160_000
    with pytest.raises(Exception, match="bad_signature|Invalid|invalid|decode"):
        verify(_changed(issued["statement"]), issued["jwks_url"], issued["issuer"], PEER)
    with pytest.raises(Exception, match="aud"):
        verify(issued["statement"], issued["jwks_url"], issued["issuer"], "https://elsewhere.example")


def _node_with_jose() -> Path:
    """A folder with jose installed by npm (kept between runs); skips the test when npm can't."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed: the JavaScript verifier is not run")
    if not (NODE_DIR / "node_modules" / "jose" / "package.json").exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        (NODE_DIR / "package.json").write_text(json.dumps({"type": "module", "private": True}))
        installed = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", f"jose@{JOSE}"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if installed.returncode != 0:
            pytest.skip(f"npm could not install jose@{JOSE}: {installed.stderr.strip()[-300:]}")
    return NODE_DIR


def _node_verify(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["node", "run.mjs", *arguments], cwd=folder, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.django_db(transaction=True)
def test_the_javascript_verifier_accepts_our_statement_and_nothing_else(issued):
    folder = _node_with_jose()
    (folder / "verify.mjs").write_text(block("verify-javascript", "javascript"))
    (folder / "run.mjs").write_text(
        'import { verifyStatement } from "./verify.mjs";\n'
        "const [token, jwksUrl, issuer, audience] = process.argv.slice(2);\n"
        "console.log(JSON.stringify(await verifyStatement(token, jwksUrl, issuer, audience)));\n"
    )

    verified = _node_verify(folder, issued["statement"], issued["jwks_url"], issued["issuer"], PEER)
    changed = _node_verify(folder, _changed(issued["statement"]), issued["jwks_url"], issued["issuer"], PEER)
    elsewhere = _node_verify(
        folder, issued["statement"], issued["jwks_url"], issued["issuer"], "https://elsewhere.example"
    )

    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout) == issued["claims"]
    assert changed.returncode != 0
    assert "JWSSignatureVerificationFailed" in changed.stderr
    assert elsewhere.returncode != 0
    assert 'unexpected "aud" claim value' in elsewhere.stderr
