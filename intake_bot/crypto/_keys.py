"""Organisation keys, the signing key that vouches for them, staff keys and grants.

Security contracts, in brief (ARCHITECTURE.md, "Cryptography"):

* The org signing key (Ed25519) signs every org public key. Its public half is pinned in
  a file outside the database; :func:`verify_org_key` is the only way to obtain a
  :class:`VerifiedOrgKey`, and only a verified key can be encrypted to. A tampered
  database therefore cannot redirect new reports to a key of the adversary.
* Every private key that comes out of a grant or a password wrap has its public key
  recomputed and compared with the expected id or public key; a mismatch is a
  :class:`DecryptionError`.
* A key-holder's private key is wrapped under Argon2id of *their own* password (own salt,
  stored parameters, never below a configured floor), separately from the login hash.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import NoReturn

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.signing
import nacl.utils
from nacl.pwhash import argon2id

from ._encoding import FORMAT_VERSION, encode_fields
from ._errors import DecryptionError, SignatureError
from ._ids import fingerprint, key_id
from ._secret import SealedGrant, Secret, WrappedPrivateKey

# ---------------------------------------------------------------------------------------
# Argon2id parameters


@dataclass(frozen=True, slots=True)
class KdfParams:
    """Argon2id cost parameters, stored beside everything derived with them."""

    opslimit: int
    memlimit: int

    def at_least(self, floor: KdfParams) -> bool:
        return self.opslimit >= floor.opslimit and self.memlimit >= floor.memlimit


KDF_MODERATE = KdfParams(argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE)
"""libsodium's MODERATE profile (3 passes, 256 MiB): the default and the floor in production."""

KDF_SENSITIVE = KdfParams(argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE)
"""libsodium's SENSITIVE profile (4 passes, 1 GiB), for machines that can afford it."""

KDF_INSECURE_TEST = KdfParams(argon2id.OPSLIMIT_MIN, argon2id.MEMLIMIT_MIN)
"""Argon2id's minimum cost. Only ever selected by the explicit test setting."""

SALT_BYTES = argon2id.SALTBYTES


def derive_key(password: Secret, salt: bytes, params: KdfParams) -> Secret:
    """Argon2id(password, salt) -> 32-byte key. Slow on purpose; never call on an event loop."""
    return Secret(
        argon2id.kdf(
            32, password.reveal(), salt, opslimit=params.opslimit, memlimit=params.memlimit
        )
    )


def hash_password(password: Secret, params: KdfParams) -> str:
    """Login hash (Argon2id, libsodium's encoded string with salt and parameters)."""
    return argon2id.str(
        password.reveal(), opslimit=params.opslimit, memlimit=params.memlimit
    ).decode("ascii")


def verify_password(encoded: str, password: Secret) -> bool:
    """Check a password against a login hash; False on any mismatch or malformed hash."""
    try:
        return bool(argon2id.verify(encoded.encode("ascii"), password.reveal()))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False


# ---------------------------------------------------------------------------------------
# Signing key


@dataclass(frozen=True, slots=True)
class SigningPublicKey:
    """The organisation's Ed25519 verify key, as pinned in the file outside the database."""

    raw: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.raw)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_id)

    def verify(self, message: bytes, signature: bytes) -> None:
        """Raise :class:`SignatureError` unless ``signature`` is this key's over ``message``."""
        try:
            nacl.signing.VerifyKey(self.raw).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
            raise SignatureError from None


class SigningPrivateKey:
    """The organisation's Ed25519 signing key. Exists only while a key-holder has it unsealed."""

    __slots__ = ("_key",)

    def __init__(self, seed: Secret) -> None:
        self._key = nacl.signing.SigningKey(seed.reveal())

    @classmethod
    def generate(cls) -> SigningPrivateKey:
        return cls(Secret(nacl.utils.random(32)))

    @property
    def public(self) -> SigningPublicKey:
        return SigningPublicKey(bytes(self._key.verify_key))

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature

    def seed(self) -> Secret:
        return Secret(bytes(self._key))

    def __repr__(self) -> str:
        return "<SigningPrivateKey: <SECRET>>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys cannot be pickled")


_PIN_TAG = "intake-signing-key-v1"


def format_pin(public: SigningPublicKey) -> str:
    """Text of the pin file: a comment with the fingerprint and one line with the key."""
    return (
        "# intake organisation signing key (Ed25519). Keep this file read-only and outside\n"
        "# the database; the bot encrypts only to org keys signed by this key.\n"
        f"# fingerprint: {public.fingerprint}\n"
        f"{_PIN_TAG} {public.raw.hex()}\n"
    )


def parse_pin(text: str) -> SigningPublicKey:
    """Parse a pin file; ``ValueError`` with a plain message when it is not one."""
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        tag, _, value = line.partition(" ")
        if tag != _PIN_TAG:
            break
        try:
            raw = bytes.fromhex(value.strip())
        except ValueError:
            break
        if len(raw) == 32:
            return SigningPublicKey(raw)
        break
    raise ValueError("not an intake signing key pin file")


# ---------------------------------------------------------------------------------------
# Organisation keys


def _org_key_message(public_key: bytes) -> bytes:
    return encode_fields("org-key", FORMAT_VERSION, public_key)


@dataclass(frozen=True, slots=True)
class SignedOrgKey:
    """An org public key and the signing key's signature over it, as stored."""

    public_key: bytes
    signature: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key_id)


@dataclass(frozen=True, slots=True)
class VerifiedOrgKey:
    """An org public key whose signature verified against the pinned signing key.

    Construct only through :func:`verify_org_key`; sealing functions accept nothing else.
    """

    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.public_key)


def verify_org_key(pinned: SigningPublicKey, signed: SignedOrgKey) -> VerifiedOrgKey:
    """Check an org key's signature against the pinned key; :class:`SignatureError` if not."""
    if len(signed.public_key) != nacl.public.PublicKey.SIZE:
        raise SignatureError
    pinned.verify(_org_key_message(signed.public_key), signed.signature)
    return VerifiedOrgKey(signed.public_key)


class OrgPrivateKey:
    """An organisation X25519 private key; opens report data keys."""

    __slots__ = ("_key",)

    def __init__(self, raw: Secret) -> None:
        self._key = nacl.public.PrivateKey(raw.reveal())

    @classmethod
    def generate(cls) -> OrgPrivateKey:
        return cls(Secret(nacl.utils.random(32)))

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.public_key)

    @property
    def key_id(self) -> bytes:
        return key_id(self.public_key)

    def sign_public(self, signer: SigningPrivateKey) -> SignedOrgKey:
        """The signed public half, ready to store."""
        return SignedOrgKey(self.public_key, signer.sign(_org_key_message(self.public_key)))

    def raw(self) -> Secret:
        return Secret(bytes(self._key))

    def box(self) -> nacl.public.SealedBox[nacl.public.PrivateKey]:
        return nacl.public.SealedBox(self._key)

    def __repr__(self) -> str:
        return "<OrgPrivateKey: <SECRET>>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys cannot be pickled")


# ---------------------------------------------------------------------------------------
# Staff keys and grants


class StaffPrivateKey:
    """A key-holder's X25519 private key; opens the grants made to them."""

    __slots__ = ("_key",)

    def __init__(self, raw: Secret) -> None:
        self._key = nacl.public.PrivateKey(raw.reveal())

    @classmethod
    def generate(cls) -> StaffPrivateKey:
        return cls(Secret(nacl.utils.random(32)))

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.public_key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(key_id(self.public_key))

    def _open(self, sealed: bytes) -> Secret:
        try:
            return Secret(nacl.public.SealedBox(self._key).decrypt(sealed))
        except (nacl.exceptions.CryptoError, ValueError, TypeError):
            raise DecryptionError from None

    def __repr__(self) -> str:
        return "<StaffPrivateKey: <SECRET>>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("private keys cannot be pickled")


@dataclass(frozen=True, slots=True)
class WrappedStaffKey:
    """A staff private key wrapped under their password, with what is needed to unwrap it."""

    public_key: bytes
    salt: bytes
    params: KdfParams
    ciphertext: WrappedPrivateKey


def _staff_wrap_ad(public_key: bytes, salt: bytes, params: KdfParams) -> bytes:
    return encode_fields(
        FORMAT_VERSION, "staff-key", public_key, salt, params.opslimit, params.memlimit
    )


def wrap_staff_key(key: StaffPrivateKey, password: Secret, params: KdfParams) -> WrappedStaffKey:
    """Encrypt a staff private key under Argon2id(password) with a fresh salt.

    The public key, salt and parameters are bound as associated data, so none of them can
    be changed without the unwrap failing.
    """
    salt = nacl.utils.random(SALT_BYTES)
    kek = derive_key(password, salt, params)
    nonce = nacl.utils.random(nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        bytes(key._key), _staff_wrap_ad(key.public_key, salt, params), nonce, kek.reveal()
    )
    return WrappedStaffKey(key.public_key, salt, params, WrappedPrivateKey(nonce + ct))


def unwrap_staff_key(
    wrapped: WrappedStaffKey, password: Secret, floor: KdfParams
) -> StaffPrivateKey:
    """Recover a staff private key; :class:`DecryptionError` on any failure.

    Fails closed when the stored parameters are below ``floor`` (a downgraded row), when
    the password is wrong, the ciphertext or any bound field was altered, or the recovered
    key's public key differs from the stored one.
    """
    if not wrapped.params.at_least(floor) or len(wrapped.salt) != SALT_BYTES:
        raise DecryptionError
    npub = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
    blob = bytes(wrapped.ciphertext)
    if len(blob) < npub + 16:
        raise DecryptionError
    try:
        kek = derive_key(password, wrapped.salt, wrapped.params)
        raw = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[npub:],
            _staff_wrap_ad(wrapped.public_key, wrapped.salt, wrapped.params),
            blob[:npub],
            kek.reveal(),
        )
        key = StaffPrivateKey(Secret(raw))
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise DecryptionError from None
    if not hmac.compare_digest(key.public_key, wrapped.public_key):
        raise DecryptionError
    return key


def _seal_to(public_key: bytes, secret: Secret) -> SealedGrant:
    box = nacl.public.SealedBox(nacl.public.PublicKey(public_key))
    return SealedGrant(box.encrypt(secret.reveal()))


def grant_org_key(key: OrgPrivateKey, staff_public_key: bytes) -> SealedGrant:
    """Seal an org private key to a key-holder (whose fingerprint the granter compared)."""
    return _seal_to(staff_public_key, key.raw())


def open_org_grant(
    sealed: SealedGrant, holder: StaffPrivateKey, expected_key_id: bytes
) -> OrgPrivateKey:
    """Open a grant and check that the private key matches ``expected_key_id``."""
    raw = holder._open(bytes(sealed))
    if len(raw) != nacl.public.PrivateKey.SIZE:
        raise DecryptionError
    key = OrgPrivateKey(raw)
    if not hmac.compare_digest(key.key_id, expected_key_id):
        raise DecryptionError
    return key


def grant_signing_key(key: SigningPrivateKey, staff_public_key: bytes) -> SealedGrant:
    """Seal the org signing key's seed to a key-holder."""
    return _seal_to(staff_public_key, key.seed())


def open_signing_grant(
    sealed: SealedGrant, holder: StaffPrivateKey, pinned: SigningPublicKey
) -> SigningPrivateKey:
    """Open a signing-key grant and check that it matches the pinned public key."""
    raw = holder._open(bytes(sealed))
    if len(raw) != 32:
        raise DecryptionError
    key = SigningPrivateKey(raw)
    if not hmac.compare_digest(key.public.raw, pinned.raw):
        raise DecryptionError
    return key
