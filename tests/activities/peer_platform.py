"""A second carbon platform for the tests: a local HTTP server with its own Ed25519 keys.

It publishes its JWKS at /.well-known/jwks.json and signs statements for a person at /statements
(`aud`, `nonce` and `month` as query parameters), as another platform running this protocol would.
Tests also call `sign` directly to make the statements a forger, a clock or a careless peer would.
"""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from joserfc import jwt
from joserfc.jwk import OKPKey

TYPE = "carbon-statement+jwt"


def month_bounds(month: datetime.date) -> dict[str, str]:
    last = (month.replace(day=28) + datetime.timedelta(days=4)).replace(day=1) - datetime.timedelta(days=1)
    return {"start": month.isoformat(), "end": last.isoformat()}


def last_month() -> datetime.date:
    from django.utils import timezone

    return (timezone.localdate().replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


class LocalPeer:
    """The peer's keys, its statements and its JWKS server (`url`, `issuer`)."""

    def __init__(self, key_id: str = "peer-1") -> None:
        self.keys: dict[str, OKPKey] = {}
        self.signing_key_id = key_id
        self.add_key(key_id)
        self.jwks_requests = 0
        # A hostile peer: its JWKS URL answers these bytes instead, or streams this many bytes of
        # filler inside a JWK Set (counted in `jwks_bytes_sent`).
        self.jwks_body: bytes | None = None
        self.jwks_stream_bytes = 0
        self.jwks_bytes_sent = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.issuer = self.url
        self.jwks_url = f"{self.url}/.well-known/jwks.json"

    def add_key(self, key_id: str) -> None:
        self.keys[key_id] = OKPKey.import_key(Ed25519PrivateKey.generate())

    def jwks(self) -> dict:
        return {
            "keys": [key.as_dict(private=False, kid=kid, alg="Ed25519") for kid, key in self.keys.items()]
        }

    def claims(self, *, audience: str, nonce: str | None, month: datetime.date, **overrides: Any) -> dict:
        now = int(datetime.datetime.now(tz=datetime.UTC).timestamp())
        reductions = [
            {
                "behaviour": "bus",
                "name": "公交出行",
                "unit": "ride",
                "quantity": "5",
                "carbon_mg": 500_000,
                "methodology_versions": [3],
                "standard": {"id": "T/ACEF 031-2022", "category": "travel", "behaviour": "公交出行"},
            },
            {
                "behaviour": "green_delivery",
                "carbon_mg": 123_456,
                "methodology_versions": [3],
                "standard": {"id": "T/ACEF 031-2022", "category": "use", "behaviour": "绿色包装快递"},
            },
        ]
        claims = {
            "iss": self.issuer,
            "sub": "peer-person-42",
            "aud": audience,
            "iat": now,
            "exp": now + 3600,
            "jti": str(uuid.uuid4()),
            "period": month_bounds(month),
            "total_carbon_mg": 623_456,
            "reductions": reductions,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(overrides)
        return claims

    def sign(
        self, claims: dict, *, key_id: str | None = None, key: OKPKey | None = None, alg: str = "Ed25519"
    ) -> str:
        key_id = key_id or self.signing_key_id
        header = {"alg": alg, "kid": key_id, "typ": TYPE}
        return jwt.encode(header, claims, key or self.keys[key_id], algorithms=[alg])

    def _handler(self):
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlparse(self.path)
                query = {name: values[0] for name, values in parse_qs(url.query).items()}
                if url.path == "/.well-known/jwks.json" and peer.jwks_stream_bytes:
                    self._stream_filler()
                    return
                if url.path == "/.well-known/jwks.json":
                    peer.jwks_requests += 1
                    body = peer.jwks_body if peer.jwks_body is not None else json.dumps(peer.jwks()).encode()
                elif url.path == "/statements":
                    month = datetime.date.fromisoformat(query["month"] + "-01")
                    claims = peer.claims(audience=query["aud"], nonce=query.get("nonce"), month=month)
                    body = json.dumps({"statement": peer.sign(claims)}).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream_filler(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                try:
                    self.wfile.write(b'{"keys": [')
                    while peer.jwks_bytes_sent < peer.jwks_stream_bytes:
                        self.wfile.write(b" " * 65536)
                        peer.jwks_bytes_sent += 65536
                    self.wfile.write(b"]}")
                except OSError:  # the reader hung up, as it should
                    pass

            def log_message(self, *args) -> None:
                pass

        return Handler

    @contextmanager
    def serving(self) -> Iterator[LocalPeer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(timeout=5)
