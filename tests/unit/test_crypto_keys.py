"""Org keys and their signatures, staff key wrapping, grants, pin files and the audit head."""

from __future__ import annotations

import dataclasses
import pickle
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from intake_bot.crypto import (
    GENESIS_HASH,
    KDF_INSECURE_TEST,
    KDF_MODERATE,
    DataKey,
    DecryptionError,
    KdfParams,
    OrgPrivateKey,
    SealedGrant,
    Secret,
    SignatureError,
    SignedOrgKey,
    SigningPrivateKey,
    SigningPublicKey,
    StaffPrivateKey,
    WrappedPrivateKey,
    WrappedStaffKey,
    chain_hash,
    fingerprint,
    format_pin,
    grant_org_key,
    grant_signing_key,
    hash_password,
    key_id,
    open_data_key,
    open_org_grant,
    open_signing_grant,
    parse_pin,
    seal_data_key,
    sign_audit_head,
    unwrap_staff_key,
    verify_audit_head,
    verify_org_key,
    verify_password,
    wrap_staff_key,
)

TEST_KDF = KDF_INSECURE_TEST
PASSWORD = Secret(b"correct horse battery staple")

seeds = st.binary(min_size=32, max_size=32)
passwords = st.binary(max_size=64).map(Secret)


def _flip(blob: bytes, position: int, mask: int = 0x01) -> bytes:
    out = bytearray(blob)
    out[position] ^= mask
    return bytes(out)


def _wrapped() -> tuple[StaffPrivateKey, WrappedStaffKey]:
    staff = StaffPrivateKey.generate()
    return staff, wrap_staff_key(staff, PASSWORD, TEST_KDF)


def _same_org_key(first: OrgPrivateKey, second: OrgPrivateKey) -> bool:
    return first.raw() == second.raw() and first.public_key == second.public_key


# ---------------------------------------------------------------------------------------
# Org keys signed by the pinned signing key


@settings(max_examples=30, deadline=None)
@given(signing_seed=seeds, org_seed=seeds)
def test_signed_org_key_verifies(signing_seed: bytes, org_seed: bytes) -> None:
    signer = SigningPrivateKey(Secret(signing_seed))
    org = OrgPrivateKey(Secret(org_seed))
    signed = org.sign_public(signer)
    verified = verify_org_key(signer.public, signed)
    assert verified.public_key == org.public_key
    assert verified.key_id == signed.key_id == org.key_id == key_id(org.public_key)


def test_swapped_org_public_key_is_refused() -> None:
    """A tampered database row cannot redirect new reports to another (attacker's) key."""
    signer = SigningPrivateKey.generate()
    signed = OrgPrivateKey.generate().sign_public(signer)
    attacker = OrgPrivateKey.generate()
    with pytest.raises(SignatureError):
        verify_org_key(signer.public, dataclasses.replace(signed, public_key=attacker.public_key))


def test_org_key_signed_by_another_signing_key_is_refused() -> None:
    signer = SigningPrivateKey.generate()
    attacker_signer = SigningPrivateKey.generate()
    forged = OrgPrivateKey.generate().sign_public(attacker_signer)
    with pytest.raises(SignatureError):
        verify_org_key(signer.public, forged)
    # A signature lifted from a genuine key onto the attacker's key fails as well.
    genuine = OrgPrivateKey.generate().sign_public(signer)
    with pytest.raises(SignatureError):
        verify_org_key(signer.public, SignedOrgKey(forged.public_key, genuine.signature))


def test_every_flipped_byte_of_an_org_key_signature_fails() -> None:
    signer = SigningPrivateKey.generate()
    signed = OrgPrivateKey.generate().sign_public(signer)
    for position in range(len(signed.signature)):
        tampered = SignedOrgKey(signed.public_key, _flip(signed.signature, position))
        with pytest.raises(SignatureError):
            verify_org_key(signer.public, tampered)
    for position in range(len(signed.public_key)):
        tampered = SignedOrgKey(_flip(signed.public_key, position), signed.signature)
        with pytest.raises(SignatureError):
            verify_org_key(signer.public, tampered)


@pytest.mark.parametrize(
    ("public_key_len", "signature_len"), [(31, 64), (33, 64), (0, 64), (32, 63), (32, 0)]
)
def test_malformed_signed_org_key_is_refused(public_key_len: int, signature_len: int) -> None:
    signer = SigningPrivateKey.generate()
    signed = OrgPrivateKey.generate().sign_public(signer)
    malformed = SignedOrgKey(
        (signed.public_key * 2)[:public_key_len], signed.signature[:signature_len]
    )
    with pytest.raises(SignatureError):
        verify_org_key(signer.public, malformed)


def test_verified_key_opens_only_for_its_private_key() -> None:
    signer = SigningPrivateKey.generate()
    org = OrgPrivateKey.generate()
    verified = verify_org_key(signer.public, org.sign_public(signer))
    dek = DataKey.generate()
    sealed = seal_data_key(dek, verified)
    assert open_data_key(sealed, org) == dek
    with pytest.raises(DecryptionError):
        open_data_key(sealed, OrgPrivateKey.generate())


def test_fingerprints_group_the_key_id() -> None:
    org = OrgPrivateKey.generate()
    signer = SigningPrivateKey.generate()
    printed = org.sign_public(signer).fingerprint
    assert re.fullmatch(r"([0-9A-F]{4} ){7}[0-9A-F]{4}", printed)
    assert printed.replace(" ", "").lower() == org.key_id.hex()
    assert fingerprint(key_id(signer.public.raw)) == signer.public.fingerprint
    assert OrgPrivateKey.generate().key_id != org.key_id


def test_private_key_reprs_hide_the_key() -> None:
    org = OrgPrivateKey.generate()
    signer = SigningPrivateKey.generate()
    staff_seed = bytes(range(32))
    staff = StaffPrivateKey(Secret(staff_seed))
    cases: list[tuple[object, bytes]] = [
        (org, org.raw().reveal()),
        (signer, signer.seed().reveal()),
        (staff, staff_seed),
    ]
    for key, raw in cases:
        for text in (repr(key), str(key), f"{key}", f"{key!r}", str([key])):
            assert "SECRET" in text
            assert raw.hex() not in text
            assert raw.hex().upper() not in text


# ---------------------------------------------------------------------------------------
# Staff keys wrapped under the key-holder's password


@settings(max_examples=25, deadline=None)
@given(seed=seeds, password=passwords)
def test_staff_key_wrap_round_trip(seed: bytes, password: Secret) -> None:
    staff = StaffPrivateKey(Secret(seed))
    wrapped = wrap_staff_key(staff, password, TEST_KDF)
    assert wrapped.public_key == staff.public_key
    assert wrapped.params == TEST_KDF
    assert wrapped.ciphertext.find(seed) == -1
    unwrapped = unwrap_staff_key(wrapped, password, TEST_KDF)
    assert unwrapped.public_key == staff.public_key
    # Functionally the same key: it opens a grant made to the original.
    org = OrgPrivateKey.generate()
    grant = grant_org_key(org, staff.public_key)
    assert _same_org_key(open_org_grant(grant, unwrapped, org.key_id), org)


def test_wrapping_uses_a_fresh_salt() -> None:
    staff = StaffPrivateKey.generate()
    first = wrap_staff_key(staff, PASSWORD, TEST_KDF)
    second = wrap_staff_key(staff, PASSWORD, TEST_KDF)
    assert first.salt != second.salt
    assert first.ciphertext != second.ciphertext


@settings(max_examples=25, deadline=None)
@given(password=passwords, wrong=passwords)
def test_wrong_password_fails(password: Secret, wrong: Secret) -> None:
    assume(password != wrong)
    wrapped = wrap_staff_key(StaffPrivateKey.generate(), password, TEST_KDF)
    with pytest.raises(DecryptionError):
        unwrap_staff_key(wrapped, wrong, TEST_KDF)


def test_every_flipped_byte_of_a_wrapped_staff_key_fails() -> None:
    _, wrapped = _wrapped()
    for position in range(len(wrapped.ciphertext)):
        tampered = dataclasses.replace(
            wrapped, ciphertext=WrappedPrivateKey(_flip(wrapped.ciphertext, position))
        )
        with pytest.raises(DecryptionError):
            unwrap_staff_key(tampered, PASSWORD, TEST_KDF)


@pytest.mark.parametrize("cut", [0, 23, 24, 39, 55])
def test_truncated_wrapped_staff_key_fails(cut: int) -> None:
    _, wrapped = _wrapped()
    tampered = dataclasses.replace(wrapped, ciphertext=WrappedPrivateKey(wrapped.ciphertext[:cut]))
    with pytest.raises(DecryptionError):
        unwrap_staff_key(tampered, PASSWORD, TEST_KDF)


def test_changed_public_key_fails() -> None:
    """The stored public key is bound: another holder's public key cannot be swapped in."""
    _, wrapped = _wrapped()
    other = StaffPrivateKey.generate().public_key
    with pytest.raises(DecryptionError):
        unwrap_staff_key(dataclasses.replace(wrapped, public_key=other), PASSWORD, TEST_KDF)


@pytest.mark.parametrize("position", [0, 7, 15])
def test_changed_salt_fails(position: int) -> None:
    _, wrapped = _wrapped()
    tampered = dataclasses.replace(wrapped, salt=_flip(wrapped.salt, position))
    with pytest.raises(DecryptionError):
        unwrap_staff_key(tampered, PASSWORD, TEST_KDF)


@pytest.mark.parametrize("salt_len", [0, 15, 17, 32])
def test_salt_of_wrong_length_fails(salt_len: int) -> None:
    _, wrapped = _wrapped()
    tampered = dataclasses.replace(wrapped, salt=(wrapped.salt * 2)[:salt_len])
    with pytest.raises(DecryptionError):
        unwrap_staff_key(tampered, PASSWORD, TEST_KDF)


@pytest.mark.parametrize(
    "params",
    [
        KdfParams(TEST_KDF.opslimit + 1, TEST_KDF.memlimit),
        KdfParams(TEST_KDF.opslimit, TEST_KDF.memlimit * 2),
    ],
)
def test_changed_params_fail(params: KdfParams) -> None:
    """Stored parameters are bound too (still above the floor, so only the binding fails)."""
    _, wrapped = _wrapped()
    with pytest.raises(DecryptionError):
        unwrap_staff_key(dataclasses.replace(wrapped, params=params), PASSWORD, TEST_KDF)


def test_stored_params_below_the_floor_are_refused() -> None:
    """A downgraded row is refused before any key derivation, even with the right password.

    The stored parameters are the cheap test ones, so this never runs MODERATE's Argon2id.
    """
    staff, wrapped = _wrapped()
    with pytest.raises(DecryptionError):
        unwrap_staff_key(wrapped, PASSWORD, KDF_MODERATE)
    assert unwrap_staff_key(wrapped, PASSWORD, TEST_KDF).public_key == staff.public_key


@pytest.mark.parametrize(
    "floor",
    [
        KdfParams(TEST_KDF.opslimit + 1, TEST_KDF.memlimit),
        KdfParams(TEST_KDF.opslimit, TEST_KDF.memlimit * 2),
    ],
)
def test_one_parameter_below_the_floor_is_enough_to_refuse(floor: KdfParams) -> None:
    _, wrapped = _wrapped()
    with pytest.raises(DecryptionError):
        unwrap_staff_key(wrapped, PASSWORD, floor)


# ---------------------------------------------------------------------------------------
# Grants


@settings(max_examples=30, deadline=None)
@given(org_seed=seeds, staff_seed=seeds)
def test_org_grant_round_trip(org_seed: bytes, staff_seed: bytes) -> None:
    org = OrgPrivateKey(Secret(org_seed))
    holder = StaffPrivateKey(Secret(staff_seed))
    grant = grant_org_key(org, holder.public_key)
    assert isinstance(grant, SealedGrant)
    assert grant.find(org_seed) == -1
    opened = open_org_grant(grant, holder, org.key_id)
    assert _same_org_key(opened, org)


@settings(max_examples=30, deadline=None)
@given(signing_seed=seeds, staff_seed=seeds)
def test_signing_grant_round_trip(signing_seed: bytes, staff_seed: bytes) -> None:
    signer = SigningPrivateKey(Secret(signing_seed))
    holder = StaffPrivateKey(Secret(staff_seed))
    grant = grant_signing_key(signer, holder.public_key)
    assert grant.find(signing_seed) == -1
    opened = open_signing_grant(grant, holder, signer.public)
    assert opened.seed() == signer.seed()
    # The opened key signs org keys that verify against the pin.
    verify_org_key(signer.public, OrgPrivateKey.generate().sign_public(opened))


def test_every_flipped_byte_of_an_org_grant_fails() -> None:
    org = OrgPrivateKey.generate()
    holder = StaffPrivateKey.generate()
    grant = grant_org_key(org, holder.public_key)
    for position in range(len(grant)):
        with pytest.raises(DecryptionError):
            open_org_grant(SealedGrant(_flip(grant, position)), holder, org.key_id)


def test_every_flipped_byte_of_a_signing_grant_fails() -> None:
    signer = SigningPrivateKey.generate()
    holder = StaffPrivateKey.generate()
    grant = grant_signing_key(signer, holder.public_key)
    for position in range(len(grant)):
        with pytest.raises(DecryptionError):
            open_signing_grant(SealedGrant(_flip(grant, position)), holder, signer.public)


@pytest.mark.parametrize("cut", [0, 32, 47, 79])
def test_truncated_grants_fail(cut: int) -> None:
    holder = StaffPrivateKey.generate()
    org = OrgPrivateKey.generate()
    signer = SigningPrivateKey.generate()
    org_grant = grant_org_key(org, holder.public_key)
    signing_grant = grant_signing_key(signer, holder.public_key)
    with pytest.raises(DecryptionError):
        open_org_grant(SealedGrant(org_grant[:cut]), holder, org.key_id)
    with pytest.raises(DecryptionError):
        open_signing_grant(SealedGrant(signing_grant[:cut]), holder, signer.public)


def test_grant_for_another_holder_fails() -> None:
    org = OrgPrivateKey.generate()
    signer = SigningPrivateKey.generate()
    holder = StaffPrivateKey.generate()
    other = StaffPrivateKey.generate()
    with pytest.raises(DecryptionError):
        open_org_grant(grant_org_key(org, holder.public_key), other, org.key_id)
    with pytest.raises(DecryptionError):
        open_signing_grant(grant_signing_key(signer, holder.public_key), other, signer.public)


def test_org_grant_for_an_unexpected_key_id_fails() -> None:
    """Granting key A and opening it as key B fails: the recomputed public key is checked."""
    key_a = OrgPrivateKey.generate()
    key_b = OrgPrivateKey.generate()
    holder = StaffPrivateKey.generate()
    grant = grant_org_key(key_a, holder.public_key)
    with pytest.raises(DecryptionError):
        open_org_grant(grant, holder, key_b.key_id)
    assert _same_org_key(open_org_grant(grant, holder, key_a.key_id), key_a)


def test_signing_grant_against_another_pin_fails() -> None:
    signer = SigningPrivateKey.generate()
    holder = StaffPrivateKey.generate()
    grant = grant_signing_key(signer, holder.public_key)
    with pytest.raises(DecryptionError):
        open_signing_grant(grant, holder, SigningPrivateKey.generate().public)


def test_grants_of_one_kind_do_not_open_as_the_other() -> None:
    """A signing seed is 32 bytes like an org key: only the key check tells them apart."""
    holder = StaffPrivateKey.generate()
    signer = SigningPrivateKey.generate()
    org = OrgPrivateKey.generate()
    with pytest.raises(DecryptionError):
        open_org_grant(grant_signing_key(signer, holder.public_key), holder, org.key_id)
    with pytest.raises(DecryptionError):
        open_signing_grant(grant_org_key(org, holder.public_key), holder, signer.public)


# ---------------------------------------------------------------------------------------
# Login password hashes (separate from the key wrap)


def test_password_hash_round_trip() -> None:
    encoded = hash_password(PASSWORD, TEST_KDF)
    assert PASSWORD.reveal().decode() not in encoded
    assert verify_password(encoded, PASSWORD)
    assert not verify_password(encoded, Secret(b"wrong password"))
    assert not verify_password("not a hash", PASSWORD)
    assert not verify_password("ünïcode", PASSWORD)


# ---------------------------------------------------------------------------------------
# Pin files


@given(seed=seeds)
def test_pin_round_trip(seed: bytes) -> None:
    public = SigningPrivateKey(Secret(seed)).public
    text = format_pin(public)
    assert public.fingerprint in text
    assert parse_pin(text) == public
    assert parse_pin(text.replace("\n", "\r\n")) == public, "a file edited on Windows"
    assert parse_pin("\n\n" + text + "\n") == public


GOOD_PIN = format_pin(SigningPrivateKey.generate().public)
GOOD_LINE = GOOD_PIN.splitlines()[-1]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "# only a comment\n",
        "intake-signing-key-v1",
        "intake-signing-key-v1 ",
        "intake-signing-key-v1 zz" + "00" * 31,
        "intake-signing-key-v1 " + "00" * 31,
        "intake-signing-key-v1 " + "00" * 33,
        "intake-signing-key-v2 " + "00" * 32,
        "intake-signing-key-v1" + "00" * 32,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        GOOD_LINE[:-2],
        GOOD_PIN.replace("intake-signing-key-v1", "# intake-signing-key-v1"),
        "-----BEGIN PUBLIC KEY-----\n" + GOOD_LINE,
    ],
)
def test_garbage_pin_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="not an intake signing key pin file"):
        parse_pin(text)


@settings(max_examples=300)
@given(
    text=st.one_of(
        st.text(),
        st.text().map(lambda s: "intake-signing-key-v1 " + s),
        st.text(alphabet="0123456789abcdefABCDEF \t\r\n#").map(
            lambda s: "intake-signing-key-v1 " + s
        ),
    )
)
def test_parse_pin_only_raises_value_error(text: str) -> None:
    try:
        public = parse_pin(text)
    except ValueError:
        return
    assert isinstance(public, SigningPublicKey)
    assert len(public.raw) == 32


# ---------------------------------------------------------------------------------------
# Audit chain and signed head


@given(seq=st.integers(min_value=0, max_value=2**64 - 1), head=st.binary(max_size=64))
def test_audit_head_round_trip(seq: int, head: bytes) -> None:
    signer = SigningPrivateKey.generate()
    verify_audit_head(signer.public, seq, head, sign_audit_head(signer, seq, head))


def test_audit_head_tampering_fails() -> None:
    signer = SigningPrivateKey.generate()
    head = chain_hash(GENESIS_HASH, b"entry 1")
    signature = sign_audit_head(signer, 7, head)
    verify_audit_head(signer.public, 7, head, signature)
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, 6, head, signature)
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, 8, head, signature)
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, 7, _flip(head, 0), signature)
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, 7, head, _flip(signature, 10))
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, 7, head, signature[:-1])
    other = SigningPrivateKey.generate()
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, 7, head, sign_audit_head(other, 7, head))


def test_audit_head_and_org_key_signatures_are_not_interchangeable() -> None:
    """Domain separation: a signature over an org key is not a signature over a head."""
    signer = SigningPrivateKey.generate()
    signed = OrgPrivateKey.generate().sign_public(signer)
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, 1, signed.public_key, signed.signature)


@given(
    previous=st.binary(max_size=64), entry=st.binary(max_size=256), other=st.binary(max_size=256)
)
def test_chain_hash_changes_with_either_input(previous: bytes, entry: bytes, other: bytes) -> None:
    digest = chain_hash(previous, entry)
    assert len(digest) == 32
    assert chain_hash(previous, entry) == digest
    if other != entry:
        assert chain_hash(previous, other) != digest
    if other != previous:
        assert chain_hash(other, entry) != digest


def test_chain_hash_fields_are_separated() -> None:
    """Length prefixes: moving a byte between previous hash and entry changes the hash."""
    assert chain_hash(b"ab", b"c") != chain_hash(b"a", b"bc")
    assert bytes(32) == GENESIS_HASH


@pytest.mark.parametrize("cls", [OrgPrivateKey, StaffPrivateKey, SigningPrivateKey])
def test_private_keys_cannot_be_pickled(
    cls: type[OrgPrivateKey] | type[StaffPrivateKey] | type[SigningPrivateKey],
) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(cls.generate())


def test_audit_head_with_negative_seq_is_a_signature_error() -> None:
    signer = SigningPrivateKey.generate()
    signature = sign_audit_head(signer, 1, bytes(32))
    with pytest.raises(SignatureError):
        verify_audit_head(signer.public, -1, bytes(32), signature)
