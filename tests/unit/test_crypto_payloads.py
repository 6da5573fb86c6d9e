"""Payload encryption, sealed data keys, padding, the Secret wrappers and opaque errors."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.crypto import (
    FORMAT_VERSION,
    ID_BYTES,
    DataKey,
    DecryptionError,
    EncryptedPayload,
    FileDecryptor,
    FileEncryptor,
    OrgPrivateKey,
    PayloadContext,
    PayloadKind,
    Plaintext,
    SealedDataKey,
    SealedGrant,
    Secret,
    SigningPrivateKey,
    StaffPrivateKey,
    VerifiedOrgKey,
    decrypt_payload,
    encrypt_payload,
    grant_org_key,
    open_data_key,
    open_org_grant,
    padme,
    payload_bucket,
    random_id,
    seal_data_key,
    verify_org_key,
)

# 1 version byte + 24-byte nonce + 16-byte Poly1305 tag around the padded plaintext.
PAYLOAD_OVERHEAD = 1 + 24 + 16

ids = st.binary(min_size=ID_BYTES, max_size=ID_BYTES)
kinds = st.sampled_from(list(PayloadKind))
parts = st.integers(min_value=0, max_value=2**63)
contexts = st.builds(PayloadContext, kind=kinds, report_id=ids, slot_id=ids, part=parts)
keys = st.binary(min_size=32, max_size=32).map(DataKey)


def _context(kind: PayloadKind = PayloadKind.ANSWER, part: int = 0) -> PayloadContext:
    return PayloadContext(kind=kind, report_id=random_id(), slot_id=random_id(), part=part)


def _flip(blob: bytes, position: int, mask: int = 0x01) -> bytes:
    out = bytearray(blob)
    out[position] ^= mask
    return bytes(out)


def _verified_org_key() -> tuple[OrgPrivateKey, VerifiedOrgKey]:
    signer = SigningPrivateKey.generate()
    org = OrgPrivateKey.generate()
    return org, verify_org_key(signer.public, org.sign_public(signer))


# ---------------------------------------------------------------------------------------
# Round trips


@settings(max_examples=150, deadline=None)
@given(dek=keys, context=contexts, data=st.binary(max_size=3000))
def test_payload_round_trip(dek: DataKey, context: PayloadContext, data: bytes) -> None:
    payload = encrypt_payload(dek, context, Plaintext(data))
    assert isinstance(payload, EncryptedPayload)
    assert payload[:1] == bytes([FORMAT_VERSION])
    if len(data) >= 16:
        assert payload.find(data) == -1, "plaintext visible in the ciphertext"
    assert decrypt_payload(dek, context, payload).reveal() == data


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=500))
def test_text_payload_round_trip(text: str) -> None:
    dek = DataKey.generate()
    context = _context(PayloadKind.NOTE)
    payload = encrypt_payload(dek, context, Plaintext.from_text(text))
    assert decrypt_payload(dek, context, payload).text() == text


def test_encryption_is_randomised() -> None:
    """Random nonces: the same plaintext in the same place never gives the same bytes."""
    dek = DataKey.generate()
    context = _context()
    first = encrypt_payload(dek, context, Plaintext(b"same answer"))
    second = encrypt_payload(dek, context, Plaintext(b"same answer"))
    assert first != second
    assert decrypt_payload(dek, context, first) == decrypt_payload(dek, context, second)


@settings(max_examples=30, deadline=None)
@given(dek_bytes=st.binary(min_size=32, max_size=32))
def test_sealed_data_key_round_trip(dek_bytes: bytes) -> None:
    org, verified = _verified_org_key()
    sealed = seal_data_key(DataKey(dek_bytes), verified)
    assert isinstance(sealed, SealedDataKey)
    assert sealed.find(dek_bytes) == -1
    assert open_data_key(sealed, org).reveal() == dek_bytes


# ---------------------------------------------------------------------------------------
# Tampering


def test_every_flipped_byte_of_a_payload_fails() -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"a short answer"))
    assert len(payload) == PAYLOAD_OVERHEAD + 256
    for position in range(len(payload)):
        for mask in (0x01, 0x80):
            with pytest.raises(DecryptionError):
                decrypt_payload(dek, context, EncryptedPayload(_flip(payload, position, mask)))


@settings(max_examples=100, deadline=None)
@given(
    data=st.binary(max_size=2000),
    where=st.floats(min_value=0, max_value=1, exclude_max=True),
    mask=st.integers(min_value=1, max_value=255),
)
def test_flipped_byte_anywhere_in_any_payload_fails(data: bytes, where: float, mask: int) -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(data))
    tampered = EncryptedPayload(_flip(payload, int(where * len(payload)), mask))
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, context, tampered)


@pytest.mark.parametrize("version", [0x00, 0x02, 0xFF])
def test_changed_version_byte_fails(version: int) -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, context, EncryptedPayload(bytes([version]) + payload[1:]))


@pytest.mark.parametrize("cut", [0, 1, 25, 40, PAYLOAD_OVERHEAD, PAYLOAD_OVERHEAD + 255])
def test_truncated_payload_fails(cut: int) -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, context, EncryptedPayload(payload[:cut]))


def test_extended_payload_fails() -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, context, EncryptedPayload(payload + b"\x00"))


def test_payload_under_another_key_fails() -> None:
    context = _context()
    payload = encrypt_payload(DataKey.generate(), context, Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(DataKey.generate(), context, payload)


def test_every_flipped_byte_of_a_sealed_data_key_fails() -> None:
    org, verified = _verified_org_key()
    sealed = seal_data_key(DataKey.generate(), verified)
    for position in range(len(sealed)):
        with pytest.raises(DecryptionError):
            open_data_key(SealedDataKey(_flip(sealed, position)), org)


def test_sealed_data_key_for_another_org_key_fails() -> None:
    _, verified = _verified_org_key()
    other, _ = _verified_org_key()
    sealed = seal_data_key(DataKey.generate(), verified)
    with pytest.raises(DecryptionError):
        open_data_key(sealed, other)


@pytest.mark.parametrize("cut", [0, 31, 48, 79])
def test_truncated_sealed_data_key_fails(cut: int) -> None:
    org, verified = _verified_org_key()
    sealed = seal_data_key(DataKey.generate(), verified)
    with pytest.raises(DecryptionError):
        open_data_key(SealedDataKey(sealed[:cut]), org)


def test_sealed_grant_is_not_a_data_key() -> None:
    """A 32-byte org key sealed as a grant must not open as a DEK for the wrong recipient."""
    org, _ = _verified_org_key()
    grant = grant_org_key(OrgPrivateKey.generate(), StaffPrivateKey.generate().public_key)
    with pytest.raises(DecryptionError):
        open_data_key(SealedDataKey(grant), org)


# ---------------------------------------------------------------------------------------
# Associated data: a payload cannot be moved to another kind, report, slot or part


@pytest.mark.parametrize("other_kind", list(PayloadKind))
def test_changed_kind_fails(other_kind: PayloadKind) -> None:
    dek = DataKey.generate()
    context = _context(PayloadKind.ANSWER)
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    moved = dataclasses.replace(context, kind=other_kind)
    if other_kind is PayloadKind.ANSWER:
        assert decrypt_payload(dek, moved, payload).reveal() == b"answer"
    else:
        with pytest.raises(DecryptionError):
            decrypt_payload(dek, moved, payload)


def test_changed_report_id_fails() -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, dataclasses.replace(context, report_id=random_id()), payload)


def test_changed_slot_id_fails() -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, dataclasses.replace(context, slot_id=random_id()), payload)


def test_swapped_report_and_slot_ids_fail() -> None:
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    swapped = dataclasses.replace(context, report_id=context.slot_id, slot_id=context.report_id)
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, swapped, payload)


@pytest.mark.parametrize("other_part", [1, 2, 256, 2**32])
def test_changed_part_fails(other_part: int) -> None:
    dek = DataKey.generate()
    context = _context(part=0)
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(dek, dataclasses.replace(context, part=other_part), payload)


@settings(max_examples=100, deadline=None)
@given(dek=keys, first=contexts, second=contexts)
def test_payload_only_opens_in_its_own_context(
    dek: DataKey, first: PayloadContext, second: PayloadContext
) -> None:
    payload = encrypt_payload(dek, first, Plaintext(b"answer"))
    if first == second:
        assert decrypt_payload(dek, second, payload).reveal() == b"answer"
    else:
        with pytest.raises(DecryptionError):
            decrypt_payload(dek, second, payload)


@pytest.mark.parametrize(
    "context",
    [
        PayloadContext(PayloadKind.ANSWER, b"short", bytes(ID_BYTES)),
        PayloadContext(PayloadKind.ANSWER, bytes(ID_BYTES), bytes(ID_BYTES + 1)),
        PayloadContext(PayloadKind.ANSWER, bytes(ID_BYTES), bytes(ID_BYTES), part=-1),
    ],
)
def test_malformed_context_is_refused(context: PayloadContext) -> None:
    with pytest.raises(ValueError, match="payload context"):
        encrypt_payload(DataKey.generate(), context, Plaintext(b"answer"))


# ---------------------------------------------------------------------------------------
# Opaque errors


def _decryption_failures() -> list[DecryptionError]:
    """One DecryptionError from each of several unrelated causes."""
    dek = DataKey.generate()
    context = _context()
    payload = encrypt_payload(dek, context, Plaintext(b"answer"))
    org, verified = _verified_org_key()
    sealed = seal_data_key(dek, verified)
    file_id = random_id()
    encryptor = FileEncryptor(dek, file_id)
    blob = encryptor.header() + encryptor.update(b"file") + b"".join(encryptor.finish())

    def wrong_key() -> None:
        decrypt_payload(DataKey.generate(), context, payload)

    def flipped_byte() -> None:
        decrypt_payload(dek, context, EncryptedPayload(_flip(payload, 30)))

    def moved_payload() -> None:
        decrypt_payload(dek, dataclasses.replace(context, part=1), payload)

    def bad_version() -> None:
        decrypt_payload(dek, context, EncryptedPayload(b"\x02" + payload[1:]))

    def truncated_payload() -> None:
        decrypt_payload(dek, context, EncryptedPayload(payload[:10]))

    def wrong_org_key() -> None:
        open_data_key(sealed, OrgPrivateKey.generate())

    def wrong_grant_key_id() -> None:
        holder = StaffPrivateKey.generate()
        open_org_grant(grant_org_key(org, holder.public_key), holder, bytes(16))

    def garbage_grant() -> None:
        open_org_grant(SealedGrant(b"\x00" * 80), StaffPrivateKey.generate(), org.key_id)

    def truncated_stream() -> None:
        decryptor = FileDecryptor(dek, file_id)
        decryptor.update(blob[:-1])
        decryptor.finish()

    def stream_for_other_file() -> None:
        FileDecryptor(dek, random_id()).update(blob)

    causes = [
        wrong_key,
        flipped_byte,
        moved_payload,
        bad_version,
        truncated_payload,
        wrong_org_key,
        wrong_grant_key_id,
        garbage_grant,
        truncated_stream,
        stream_for_other_file,
    ]
    errors = []
    for cause in causes:
        with pytest.raises(DecryptionError) as info:
            cause()
        errors.append(info.value)
    return errors


def test_decryption_error_is_opaque() -> None:
    """Every cause gives the same message and no chained library exception in tracebacks."""
    errors = _decryption_failures()
    assert {str(error) for error in errors} == {str(DecryptionError())}
    assert {repr(error) for error in errors} == {repr(DecryptionError())}
    assert {error.args for error in errors} == {DecryptionError().args}
    for error in errors:
        assert error.__cause__ is None
        assert error.__context__ is None or error.__suppress_context__


# ---------------------------------------------------------------------------------------
# Padding


def test_all_short_payloads_have_one_length() -> None:
    dek = DataKey.generate()
    context = _context()
    lengths = {len(encrypt_payload(dek, context, Plaintext(bytes(n)))) for n in range(256)}
    assert lengths == {PAYLOAD_OVERHEAD + 256}
    # The bucket boundary is visible: one more byte needs the next bucket.
    assert len(encrypt_payload(dek, context, Plaintext(bytes(256)))) == PAYLOAD_OVERHEAD + 512


@pytest.mark.parametrize("bucket", [512, 1024, 2048, 8192])
def test_payloads_in_one_bucket_have_one_length(bucket: int) -> None:
    dek = DataKey.generate()
    context = _context()
    sizes = [bucket // 2, bucket // 2 + 1, (3 * bucket) // 4, bucket - 2, bucket - 1]
    lengths = {len(encrypt_payload(dek, context, Plaintext(bytes(n)))) for n in sizes}
    assert lengths == {PAYLOAD_OVERHEAD + bucket}


@given(length=st.integers(min_value=0, max_value=2**40))
def test_payload_bucket_properties(length: int) -> None:
    bucket = payload_bucket(length)
    assert bucket >= 256
    assert bucket & (bucket - 1) == 0, "buckets are powers of two"
    assert bucket > length, "room for at least one padding byte"
    assert bucket == 256 or bucket // 2 <= length, "the smallest bucket that fits"


@given(n=st.integers(min_value=0, max_value=2**64))
def test_padme_never_shrinks_and_is_idempotent(n: int) -> None:
    padded = padme(n)
    assert padded >= n
    assert padme(padded) == padded


@given(n=st.integers(min_value=2**10, max_value=2**64))
def test_padme_overhead_is_bounded(n: int) -> None:
    assert padme(n) - n <= 0.12 * n


@given(n=st.integers(min_value=0, max_value=2**64), delta=st.integers(min_value=0, max_value=2**40))
def test_padme_is_monotonic(n: int, delta: int) -> None:
    assert padme(n) <= padme(n + delta)


def test_padme_known_values() -> None:
    """Values worked by hand from the PURBs paper's definition."""
    assert [padme(n) for n in (0, 1, 2, 3, 8, 9)] == [0, 1, 2, 3, 8, 10]
    assert padme(1000) == 1024
    assert padme(65535) == 65536
    assert padme(65537) == 65536 + 2048
    assert padme(2**22 + 1) == 2**22 + 2**17


def test_padme_leaks_few_bits() -> None:
    """Between 1 MiB and 2 MiB only 33 padded sizes exist (multiples of 32 KiB)."""
    outputs = {padme(n) for n in range(2**20, 2**21 + 1, 97)} | {padme(2**21 - 1)}
    assert len(outputs) <= 33
    assert all(value % 2**15 == 0 for value in outputs)


# ---------------------------------------------------------------------------------------
# Secret and Plaintext

CONTENT = b"TOP-SECRET-witness-name-4711"


def _renderings(value: object) -> list[str]:
    return [
        repr(value),
        str(value),
        format(value),
        format(value, ">80"),
        format(value, "x"),
        f"{value}",
        f"{value!r}",
        f"{value!s}",
        f"{value:^100}",
        "%s" % (value,),  # noqa: UP031  # old-style formatting is one of the paths to check
        "%r" % (value,),  # noqa: UP031
        "{}".format(value),  # noqa: UP032
        str([value]),
        str({"k": value}),
    ]


@pytest.mark.parametrize("cls", [Secret, Plaintext, DataKey])
def test_renderings_do_not_show_content(cls: type[Secret]) -> None:
    value = cls(CONTENT)
    for text in _renderings(value):
        assert "TOP-SECRET" not in text
        assert CONTENT.hex() not in text
        assert "4711" not in text
        assert "SECRET" in text, "a rendering says what it hides"


@given(first=st.binary(), second=st.binary())
def test_renderings_do_not_depend_on_content(first: bytes, second: bytes) -> None:
    assert _renderings(Plaintext(first)) == _renderings(Plaintext(second))


def test_plaintext_text_round_trip() -> None:
    assert Plaintext.from_text("Zeugin: Ähnlichkeit ✓").text() == "Zeugin: Ähnlichkeit ✓"
    with pytest.raises(UnicodeDecodeError):
        Plaintext(b"\xff\xfe").text()


@pytest.mark.parametrize("cls", [Secret, Plaintext, DataKey])
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_secrets_cannot_be_pickled(cls: type[Secret], protocol: int) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(cls(CONTENT), protocol=protocol)


def test_secret_equality() -> None:
    assert Secret(b"abc") == Secret(b"abc")
    assert Plaintext(b"abc") == Plaintext(b"abc")
    assert Secret(b"abc") != Secret(b"abd")
    assert Secret(b"abc") != Secret(b"abcd")
    assert Secret(b"") == Secret(b"")
    assert Secret(b"abc") != b"abc", "a secret never equals raw bytes"
    assert len(Secret(b"abc")) == 3


def test_secrets_are_unhashable() -> None:
    """Hashes of equal secrets would be equal: a dict or set must not be a side channel."""
    with pytest.raises(TypeError):
        hash(Secret(b"abc"))


def test_secret_holds_only_bytes() -> None:
    with pytest.raises(TypeError):
        Secret("text")  # type: ignore[arg-type]


def test_ciphertext_repr_shows_only_length() -> None:
    payload = EncryptedPayload(b"\x01" + bytes(40))
    assert repr(payload) == "<EncryptedPayload: 41 bytes>"


def test_part_beyond_64_bits_is_refused_like_other_malformed_contexts() -> None:
    context = _context(part=2**64)
    with pytest.raises(ValueError, match="payload context"):
        encrypt_payload(DataKey.generate(), context, Plaintext(b"answer"))
    payload = encrypt_payload(DataKey.generate(), _context(), Plaintext(b"answer"))
    with pytest.raises(DecryptionError):
        decrypt_payload(DataKey.generate(), context, payload)
