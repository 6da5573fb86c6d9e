"""Key backup files: round trip, wrong passphrase, any altered byte, truncation, and
Argon2id costs below the floor (a downgraded file) or above the ceiling refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake_bot.crypto import (
    BACKUP_KDF_CEILING,
    BACKUP_MAGIC,
    KDF_INSECURE_TEST,
    KDF_MODERATE,
    DecryptionError,
    KdfParams,
    Plaintext,
    Secret,
    open_backup,
    seal_backup,
)

TEST_KDF = KDF_INSECURE_TEST
PASSPHRASE = Secret(b"orbit cactus lantern seventeen quietly marble")
CONTENT = Plaintext(b'{"format": "intake-key-backup-v1", "keys": []}')

_OPS = len(BACKUP_MAGIC)
_MEM = _OPS + 8
_SALT = _MEM + 8
_NONCE = _SALT + 16
_BODY = _NONCE + 24

passphrases = st.binary(max_size=64).map(Secret)


def _flip(blob: bytes, position: int, mask: int = 0x01) -> bytes:
    out = bytearray(blob)
    out[position] ^= mask
    return bytes(out)


def _with_cost(blob: bytes, params: KdfParams) -> bytes:
    return (
        blob[:_OPS]
        + params.opslimit.to_bytes(8, "big")
        + params.memlimit.to_bytes(8, "big")
        + blob[_SALT:]
    )


@pytest.fixture(scope="module")
def sealed() -> bytes:
    return seal_backup(PASSPHRASE, CONTENT, TEST_KDF)


@settings(max_examples=25, deadline=None)
@given(passphrase=passphrases, content=st.binary(max_size=4096))
def test_round_trip(passphrase: Secret, content: bytes) -> None:
    blob = seal_backup(passphrase, Plaintext(content), TEST_KDF)
    assert open_backup(passphrase, blob, TEST_KDF) == Plaintext(content)


def test_the_file_describes_itself(sealed: bytes) -> None:
    assert sealed.startswith(BACKUP_MAGIC)
    assert int.from_bytes(sealed[_OPS:_MEM], "big") == TEST_KDF.opslimit
    assert int.from_bytes(sealed[_MEM:_SALT], "big") == TEST_KDF.memlimit
    assert len(sealed) == _BODY + len(CONTENT) + 16
    assert CONTENT.reveal() not in sealed


def test_each_backup_has_its_own_salt_and_nonce() -> None:
    first = seal_backup(PASSPHRASE, CONTENT, TEST_KDF)
    second = seal_backup(PASSPHRASE, CONTENT, TEST_KDF)
    assert first[_SALT:_NONCE] != second[_SALT:_NONCE]
    assert first[_NONCE:_BODY] != second[_NONCE:_BODY]
    assert first[_BODY:] != second[_BODY:]


@settings(max_examples=25, deadline=None)
@given(wrong=passphrases)
def test_wrong_passphrase(sealed: bytes, wrong: Secret) -> None:
    if wrong == PASSPHRASE:
        return
    with pytest.raises(DecryptionError):
        open_backup(wrong, sealed, TEST_KDF)


def test_every_single_bit_flip_fails(sealed: bytes) -> None:
    for position in range(len(sealed)):
        with pytest.raises(DecryptionError):
            open_backup(PASSPHRASE, _flip(sealed, position), TEST_KDF)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), mask=st.integers(min_value=1, max_value=255))
def test_byte_flips_anywhere_fail(sealed: bytes, data: st.DataObject, mask: int) -> None:
    # Any mask, anywhere but the memory cost (where some masks ask for gigabytes, legally
    # under the ceiling: single-bit flips there are covered above).
    position = data.draw(
        st.integers(min_value=0, max_value=len(sealed) - 1).filter(lambda p: not _MEM <= p < _SALT)
    )
    with pytest.raises(DecryptionError):
        open_backup(PASSPHRASE, _flip(sealed, position, mask), TEST_KDF)


def test_truncation_and_extension_fail(sealed: bytes) -> None:
    for length in range(len(sealed)):
        with pytest.raises(DecryptionError):
            open_backup(PASSPHRASE, sealed[:length], TEST_KDF)
    with pytest.raises(DecryptionError):
        open_backup(PASSPHRASE, sealed + b"\x00", TEST_KDF)


@pytest.mark.parametrize(
    "magic",
    [b"", b"intake key backup 2\n", b"INTAKE KEY BACKUP 1\n", b"intake key backup 1\r"],
)
def test_wrong_magic_fails(sealed: bytes, magic: bytes) -> None:
    with pytest.raises(DecryptionError):
        open_backup(PASSPHRASE, magic + sealed[len(BACKUP_MAGIC) :], TEST_KDF)


def test_costs_below_the_floor_are_refused() -> None:
    # A file sealed honestly with a low cost is still refused by a higher floor.
    weak = seal_backup(PASSPHRASE, CONTENT, TEST_KDF)
    with pytest.raises(DecryptionError):
        open_backup(PASSPHRASE, weak, KDF_MODERATE)


def test_a_downgraded_cost_is_refused_before_any_work() -> None:
    strong = KdfParams(TEST_KDF.opslimit + 1, TEST_KDF.memlimit * 2)
    blob = seal_backup(PASSPHRASE, CONTENT, strong)
    assert open_backup(PASSPHRASE, blob, strong) == CONTENT
    for lowered in (
        KdfParams(TEST_KDF.opslimit, strong.memlimit),
        KdfParams(strong.opslimit, TEST_KDF.memlimit),
    ):
        with pytest.raises(DecryptionError):
            open_backup(PASSPHRASE, _with_cost(blob, lowered), strong)
        # And below no floor at all it fails too: the cost is bound as associated data.
        with pytest.raises(DecryptionError):
            open_backup(PASSPHRASE, _with_cost(blob, lowered), TEST_KDF)


def test_costs_above_the_ceiling_are_refused(sealed: bytes) -> None:
    for huge in (
        KdfParams(BACKUP_KDF_CEILING.opslimit + 1, TEST_KDF.memlimit),
        KdfParams(TEST_KDF.opslimit, BACKUP_KDF_CEILING.memlimit + 1),
        KdfParams(2**64 - 1, 2**64 - 1),
    ):
        with pytest.raises(DecryptionError):
            open_backup(PASSPHRASE, _with_cost(sealed, huge), TEST_KDF)
        with pytest.raises(ValueError, match="cost"):
            seal_backup(PASSPHRASE, CONTENT, huge)


def test_sealing_below_the_minimum_cost_is_refused() -> None:
    with pytest.raises(ValueError, match="cost"):
        seal_backup(PASSPHRASE, CONTENT, KdfParams(0, TEST_KDF.memlimit))


def test_errors_say_nothing(sealed: bytes) -> None:
    with pytest.raises(DecryptionError) as wrong:
        open_backup(Secret(b"not it"), sealed, TEST_KDF)
    with pytest.raises(DecryptionError) as cut:
        open_backup(PASSPHRASE, sealed[:-1], TEST_KDF)
    assert str(wrong.value) == str(cut.value) == "decryption failed"
