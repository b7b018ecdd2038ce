"""Removing metadata from a JPEG without re-encoding it.

A phone photo arrives as a JPEG. Keeping the sender's own bytes (less their metadata) stores
exactly what was sent and costs a millisecond, where decoding and re-encoding it losslessly
costs the bot tens of milliseconds per photo and makes the worker decode a larger file.
"""

from __future__ import annotations

SOI = b"\xff\xd8"
EOI = 0xD9
SOS = 0xDA
# APP0 (JFIF) and APP14 (Adobe: the colour transform) change how the pixels decode; every other
# application segment and comments carry only metadata (EXIF with GPS and camera serial, XMP,
# ICC, maker notes, thumbnails), which we never store. Of APP0 only the JFIF header is kept, and
# without its thumbnail: a JFXX extension or any other APP0 carries arbitrary payload.
APP0 = 0xE0
_KEPT_APP = frozenset({APP0, 0xEE})
_JFIF = b"JFIF\x00"
_JFIF_FIELDS = 7  # version (2), density units (1), X and Y density (2 + 2)
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RSTn carry no length


def _is_metadata(marker: int) -> bool:
    return (0xE0 <= marker <= 0xEF and marker not in _KEPT_APP) or marker == 0xFE


def _clean_app0(segment: bytes) -> bytes:
    """A JFIF header without its thumbnail; nothing for any other APP0 (JFXX, unknown)."""
    body = segment[4:]
    if not body.startswith(_JFIF) or len(body) < len(_JFIF) + _JFIF_FIELDS + 2:
        return b""
    fields = body[len(_JFIF):len(_JFIF) + _JFIF_FIELDS]
    length = 2 + len(_JFIF) + _JFIF_FIELDS + 2
    return b"\xff\xe0" + length.to_bytes(2, "big") + _JFIF + fields + b"\x00\x00"


# A phone's or an encoder's progressive JPEG has about ten scans (libjpeg's default script),
# mozjpeg's optimised scripts a few more; a file of thousands of near-empty scans exists only
# to make a decoder redo its whole image that many times (2,000 scans of 4096x4096: 2 s).
MAX_SCANS = 100


def scan_count(data: bytes) -> int:
    """How many scans (SOS segments) a JPEG holds, counted from its markers alone."""
    scans, pos = 0, len(SOI)
    while True:
        at = data.find(b"\xff\xda", pos)
        if at == -1:
            return scans
        # Entropy-coded data never holds 0xFF 0xDA (a 0xFF there is followed by 0x00 or RSTn),
        # so every occurrence after the SOI is a scan header.
        scans += 1
        pos = at + 2


def strip_metadata(data: bytes) -> bytes | None:
    """The same JPEG without metadata segments, or None if the structure is not plain.

    Anything after the end-of-image marker (an MPO's second picture, hidden payloads) is cut.
    The entropy-coded data is copied byte for byte, so the pixels decode identically.
    """
    if not data.startswith(SOI):
        return None
    out = bytearray(SOI)
    pos = len(SOI)
    in_scan = False
    while pos < len(data):
        if in_scan:
            # Inside entropy-coded data a 0xFF byte is followed by 0x00 (stuffing) or a restart
            # marker; anything else is the next segment.
            marker_at = data.find(b"\xff", pos)
            while marker_at != -1 and marker_at + 1 < len(data) and (
                    data[marker_at + 1] == 0x00 or 0xD0 <= data[marker_at + 1] <= 0xD7):
                marker_at = data.find(b"\xff", marker_at + 2)
            if marker_at == -1 or marker_at + 1 >= len(data):
                return None  # truncated scan: let the decoder report it
            out += data[pos:marker_at]
            pos = marker_at
            in_scan = False
        if data[pos] != 0xFF:
            return None
        while pos + 1 < len(data) and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes before a marker
        if pos + 1 >= len(data):
            return None
        marker = data[pos + 1]
        if marker == EOI:
            return bytes(out + data[pos:pos + 2])
        if marker in _STANDALONE:
            out += data[pos:pos + 2]
            pos += 2
            continue
        if pos + 4 > len(data):
            return None
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > len(data):
            return None
        if marker == APP0:
            out += _clean_app0(data[pos:end])
        elif not _is_metadata(marker):
            out += data[pos:end]
        pos = end
        in_scan = marker == SOS
    return None


def with_orientation(stripped: bytes, orientation: int) -> bytes:
    """``stripped`` (a JPEG from :func:`strip_metadata`) carrying one EXIF tag: its orientation.

    A rotated phone photo is then stored as sent, less its metadata, and turned upright when
    opened, instead of being decoded and re-encoded losslessly at about nine times the size.
    """
    if not 2 <= orientation <= 8:
        raise ValueError(f"not an EXIF orientation that turns the image: {orientation}")
    # EXIF in a big-endian TIFF block: one IFD holding one SHORT, Orientation (0x0112).
    tiff = (b"MM\x00\x2a" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big")
            + (0x0112).to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big")
            + orientation.to_bytes(2, "big") + b"\x00\x00" + (0).to_bytes(4, "big"))
    body = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    # After the JFIF header when there is one (JFIF wants APP0 first), else right after SOI.
    at = len(SOI)
    if stripped[at:at + 2] == b"\xff\xe0":
        at += 2 + int.from_bytes(stripped[at + 2:at + 4], "big")
    return stripped[:at] + segment + stripped[at:]
