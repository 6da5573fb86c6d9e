"""The crypto envelope of format version 1: the only module that imports PyNaCl.

Everything secret is a :class:`Secret` (or :class:`Plaintext`), everything storable a
:class:`Ciphertext` subclass. Every failure to decrypt, unseal, unwrap or match a recomputed
public key raises the one opaque :class:`DecryptionError`; a bad signature raises
:class:`SignatureError`. See ARCHITECTURE.md, "Cryptography", for the design and each
function's docstring for its contract.

.. warning:: :func:`seal_backup` writes private keys into a file that anyone with its
   passphrase can open, for as long as the file exists: retiring or rotating a key later
   does not reach a backup made before. Keep backups offline and the passphrase apart.
"""

from ._audit import GENESIS_HASH, chain_hash, sign_audit_head, verify_audit_head
from ._backup import BACKUP_KDF_CEILING, BACKUP_MAGIC, open_backup, seal_backup
from ._encoding import FORMAT_VERSION, encode_fields
from ._ephemeral import (
    boot_tag,
    new_secret,
    next_handle_key,
    open_draft_box,
    reporter_handle,
    seal_draft_box,
)
from ._errors import CryptoError, DecryptionError, SignatureError
from ._files import (
    CHUNK_BYTES,
    HEADER_BYTES,
    RECORD_BYTES,
    FileDecryptor,
    FileDigest,
    FileEncryptor,
    encrypted_size,
    record_count,
)
from ._ids import ID_BYTES, fingerprint, key_id, random_id
from ._keys import (
    KDF_INSECURE_TEST,
    KDF_MODERATE,
    KDF_SENSITIVE,
    KdfParams,
    OrgPrivateKey,
    SignedOrgKey,
    SigningPrivateKey,
    SigningPublicKey,
    StaffPrivateKey,
    VerifiedOrgKey,
    WrappedStaffKey,
    format_pin,
    grant_org_key,
    grant_signing_key,
    hash_password,
    open_org_grant,
    open_signing_grant,
    parse_pin,
    unwrap_staff_key,
    verify_org_key,
    verify_password,
    wrap_staff_key,
)
from ._padding import padme, payload_bucket
from ._payload import (
    DataKey,
    PayloadContext,
    PayloadKind,
    decrypt_payload,
    encrypt_payload,
    open_data_key,
    seal_data_key,
)
from ._receipt import (
    RECEIPT_WORDS,
    new_receipt_code,
    normalise_receipt,
    receipt_lookup_id,
    receipt_reply_key,
)
from ._secret import (
    Ciphertext,
    EncryptedPayload,
    FileCiphertext,
    Plaintext,
    SealedDataKey,
    SealedGrant,
    Secret,
    WrappedDraftBox,
    WrappedPrivateKey,
)
from ._vault import VAULT_KEY_BYTES, new_vault_key, open_vault, seal_vault

__all__ = [
    "BACKUP_KDF_CEILING",
    "BACKUP_MAGIC",
    "CHUNK_BYTES",
    "FORMAT_VERSION",
    "GENESIS_HASH",
    "HEADER_BYTES",
    "ID_BYTES",
    "KDF_INSECURE_TEST",
    "KDF_MODERATE",
    "KDF_SENSITIVE",
    "RECEIPT_WORDS",
    "RECORD_BYTES",
    "VAULT_KEY_BYTES",
    "Ciphertext",
    "CryptoError",
    "DataKey",
    "DecryptionError",
    "EncryptedPayload",
    "FileCiphertext",
    "FileDecryptor",
    "FileDigest",
    "FileEncryptor",
    "KdfParams",
    "OrgPrivateKey",
    "PayloadContext",
    "PayloadKind",
    "Plaintext",
    "SealedDataKey",
    "SealedGrant",
    "Secret",
    "SignatureError",
    "SignedOrgKey",
    "SigningPrivateKey",
    "SigningPublicKey",
    "StaffPrivateKey",
    "VerifiedOrgKey",
    "WrappedDraftBox",
    "WrappedPrivateKey",
    "WrappedStaffKey",
    "boot_tag",
    "chain_hash",
    "decrypt_payload",
    "encode_fields",
    "encrypt_payload",
    "encrypted_size",
    "fingerprint",
    "format_pin",
    "grant_org_key",
    "grant_signing_key",
    "hash_password",
    "key_id",
    "new_receipt_code",
    "new_secret",
    "new_vault_key",
    "next_handle_key",
    "normalise_receipt",
    "open_backup",
    "open_data_key",
    "open_draft_box",
    "open_org_grant",
    "open_signing_grant",
    "open_vault",
    "padme",
    "parse_pin",
    "payload_bucket",
    "random_id",
    "receipt_lookup_id",
    "receipt_reply_key",
    "record_count",
    "reporter_handle",
    "seal_backup",
    "seal_data_key",
    "seal_draft_box",
    "seal_vault",
    "sign_audit_head",
    "unwrap_staff_key",
    "verify_audit_head",
    "verify_org_key",
    "verify_password",
    "wrap_staff_key",
]
