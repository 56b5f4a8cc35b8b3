"""What the benchmarks use instead of the auth service: a JWKS endpoint and signed tokens.

The service under test is started with ``ATES_AUTH_URL`` = :attr:`Issuer.url`, so it
fetches this JWKS and verifies these tokens exactly as it would auth's."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from ates.platform.security import API_AUDIENCE


class Issuer:
    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256", parameters={"kid": "bench", "use": "sig"})
        jwks = json.dumps(KeySet([self.key]).as_dict(private=False)).encode()

        class Jwks(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, role: str = "admin", sub: str | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": API_AUDIENCE,
            "sub": sub or str(uuid.uuid4()),
            "role": role,
            "preferred_username": role,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode({"alg": "ES256", "kid": "bench"}, claims, self.key)

    def headers(self, role: str, sub: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, sub)}"}
