"""What the staff app shows inline and how it reads forged inbox positions.

* :func:`admin.content.sniff_image`: only JPEG, PNG and WebP, from their magic bytes; never
  from a name or a claimed type (a report's files come from anyone).
* :meth:`intake_bot.storage.inbox.Cursor.decode`: any query-string value is either a
  cursor that encodes back to itself or None; it never raises.
"""

from __future__ import annotations

import datetime as dt
import struct
import zlib

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from admin.content import SNIFF_BYTES, sniff_image
from intake_bot.storage.inbox import Cursor

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return PNG_MAGIC + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


ACCEPTED = {
    "png": (png(), "image/png"),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01", "image/jpeg"),
    "jpeg-exif": (b"\xff\xd8\xff\xe1\x12\x34Exif\x00\x00", "image/jpeg"),
    "webp": (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
}
REFUSED = {
    "gif87": b"GIF87a\x01\x00\x01\x00\x80\x00",
    "gif89": b"GIF89a\x01\x00\x01\x00\x80\x00",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "svg-xml": b'<?xml version="1.0"?><svg/>',
    "html": b"<!DOCTYPE html><script>alert(1)</script>",
    "html-bom": b"\xef\xbb\xbf<html><body onload=alert(1)>",
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
    "wav": b"RIFF\x24\x00\x00\x00WAVEfmt ",
    "avi": b"RIFF\x24\x00\x00\x00AVI LIST",
    "bmp": b"BM\x36\x00\x00\x00\x00\x00\x00\x00",
    "tiff": b"II*\x00\x08\x00\x00\x00",
    "ico": b"\x00\x00\x01\x00\x01\x00",
    "zip": b"PK\x03\x04\x14\x00\x00\x00",
    "empty": b"",
    "png-cut": PNG_MAGIC[:7],
    "jpeg-cut": b"\xff\xd8",
    "webp-cut": b"RIFF\x24\x00\x00\x00WEB",
    "png-late": b" " + png(),
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_jpeg_png_and_webp_are_recognised(name: str) -> None:
    data, mime = ACCEPTED[name]
    assert sniff_image(data[:SNIFF_BYTES]) == mime


@pytest.mark.parametrize("name", list(REFUSED))
def test_anything_else_is_not_an_image(name: str) -> None:
    assert sniff_image(REFUSED[name][:SNIFF_BYTES]) is None


def test_the_sniffer_needs_no_more_than_it_is_given() -> None:
    assert SNIFF_BYTES >= 12  # RIFF....WEBP is the longest signature


@given(st.binary(max_size=SNIFF_BYTES))
@example(b"RIFF\x00\x00\x00\x00WEBP")
@example(b"\xff\xd8\xff")
@settings(max_examples=500)
def test_the_answer_depends_only_on_the_magic_bytes(head: bytes) -> None:
    expected = None
    if head.startswith(b"\xff\xd8\xff"):
        expected = "image/jpeg"
    elif head.startswith(PNG_MAGIC):
        expected = "image/png"
    elif len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        expected = "image/webp"
    assert sniff_image(head) == expected


# --- inbox cursors -----------------------------------------------------------------------

cursors = st.builds(
    Cursor,
    st.booleans(),
    st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)),
    st.binary(min_size=16, max_size=16),
)


@given(cursors)
def test_a_cursor_survives_the_query_string(cursor: Cursor) -> None:
    text = cursor.encode()
    assert text.isascii()
    assert "&" not in text
    assert "=" not in text
    assert " " not in text
    assert Cursor.decode(text) == cursor


hexes = st.text("0123456789abcdefABCDEF ", max_size=40)
forged = (
    st.text(max_size=80)
    | st.builds(
        lambda u, d, i: f"{u}.{d}.{i}",
        st.text(max_size=3) | st.sampled_from(["0", "1", "2", "-1", "true"]),
        st.text(max_size=12) | st.dates().map(dt.date.isoformat),
        hexes,
    )
    | cursors.map(Cursor.encode).flatmap(
        lambda good: st.integers(0, len(good)).map(lambda cut: good[:cut])
    )
)


@given(forged)
@example("")
@example("1.2026-13-01." + "00" * 16)
@example("1.2026-02-30." + "00" * 16)
@example("1.2026-01-01." + "00" * 15)
@example("1.2026-01-01." + "00" * 17)
@example("1.2026-01-01." + "0" * 31)
@example("1.2026-01-01." + "zz" * 16)
@example("1.2026-01-01." + "00" * 16 + ".x")
@example("1.0000-01-01." + "00" * 16)
@example("1.+2026-01-01." + "00" * 16)
@example("1.\uff12\uff10\uff12\uff16-01-01." + "00" * 16)  # full-width digits
@example("1.2026-01-01." + "\u0660" * 32)
@example("\x00.\x00.\x00")
@settings(max_examples=500)
def test_a_forged_cursor_is_none_or_a_real_one(text: str) -> None:
    found = Cursor.decode(text)
    if found is not None:
        assert isinstance(found.created_on, dt.date)
        assert len(found.id) == 16
        assert Cursor.decode(found.encode()) == found
