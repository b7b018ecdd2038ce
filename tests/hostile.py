"""A generated corpus of malformed and hostile uploads (no file is committed; all are built here).

Each entry is a file a user might send, on purpose or not: truncated and corrupted images in
every accepted format, wrong extensions, empty and 1x1 files, decompression bombs (small files
that claim huge dimensions), odd modes (CMYK, 16-bit, palette, alpha), animated and multi-page
images, EXIF orientations, and documents that are not images at all.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from dataclasses import dataclass

from PIL import Image

from tests.conftest import pbc_fixtures


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes
    mime: str


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _cell_like(size: tuple[int, int] = (96, 80), seed: int = 0) -> Image.Image:
    noise = Image.effect_noise(size, 40 + seed).convert("RGB")
    return Image.blend(noise, Image.new("RGB", size, (200, 120, 170)), 0.6)


MIMES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
         "BMP": "image/bmp", "GIF": "image/gif"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "TIFF": "tif", "BMP": "bmp",
              "GIF": "gif"}


def valid_images() -> list[Upload]:
    """Well-formed files in many modes: the seeds that the corruptions start from."""
    base = _cell_like()
    variants: list[tuple[str, Image.Image, str, dict[str, object]]] = [
        ("rgb", base, "JPEG", {"quality": 90}),
        ("progressive", base, "JPEG", {"progressive": True}),
        ("grey", base.convert("L"), "JPEG", {}),
        ("cmyk", base.convert("CMYK"), "JPEG", {}),
        ("rgb", base, "PNG", {}),
        ("rgba", base.convert("RGBA"), "PNG", {}),
        ("palette", base.convert("P"), "PNG", {"transparency": 0}),
        ("sixteen-bit", base.convert("I;16"), "PNG", {}),
        ("la", base.convert("LA"), "PNG", {}),
        ("bilevel", base.convert("1"), "PNG", {}),
        ("rgb", base, "WEBP", {"quality": 80}),
        ("lossless-alpha", base.convert("RGBA"), "WEBP", {"lossless": True}),
        ("rgb", base, "TIFF", {"compression": "tiff_lzw"}),
        ("cmyk", base.convert("CMYK"), "TIFF", {}),
        ("sixteen-bit", base.convert("I;16"), "TIFF", {}),
        ("rgb", base, "BMP", {}),
        ("rgb", base, "GIF", {}),
    ]
    uploads = [Upload(f"{name}.{EXTENSIONS[fmt]}", _encode(image, fmt, **options), MIMES[fmt])
               for name, image, fmt, options in variants]
    frames = [_cell_like(seed=s) for s in range(3)]
    uploads.append(Upload("animated.gif", _encode(frames[0], "GIF", save_all=True,
                                                  append_images=frames[1:]), "image/gif"))
    uploads.append(Upload("multipage.tif", _encode(frames[0], "TIFF", save_all=True,
                                                   append_images=frames[1:]), "image/tiff"))
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # a GPS position that must not survive
        uploads.append(Upload(f"exif-orientation-{orientation}.jpg",
                              _encode(base, "JPEG", exif=exif.tobytes()), "image/jpeg"))
    for side in (1, 2, 31):
        for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "BMP"):
            uploads.append(Upload(f"{side}x{side}.{EXTENSIONS[fmt]}",
                                  _encode(Image.new("RGB", (side, side), "red"), fmt),
                                  MIMES[fmt]))
    return uploads


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(
        b"IEND", b"")


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(_encode(_cell_like(), "JPEG"))
    marker = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, marker + 5, height, width)
    return bytes(data)


def bombs() -> list[Upload]:
    zero_bytes_highly_compressible = _encode(Image.new("L", (12000, 12000)), "PNG")
    return [
        Upload("bomb-100k-square.png", _png_claiming(100_000, 100_000), "image/png"),
        Upload("bomb-wide.png", _png_claiming(2_000_000, 40), "image/png"),
        Upload("bomb-65k.jpg", _jpeg_claiming(65_000, 65_000), "image/jpeg"),
        Upload("bomb-real-144mp.png", zero_bytes_highly_compressible, "image/png"),
        Upload("gif-huge-screen.gif", _gif_claiming(65_535, 65_535), "image/gif"),
    ]


def scan_bomb(extra_scans: int) -> bytes:
    """A real progressive JPEG of a cell, its last scan repeated ``extra_scans`` more times
    before the end of the image: the shape of a scan bomb (each scan is another pass)."""
    buffer = io.BytesIO()
    Image.open(pbc_fixtures()["neutrophil"]).convert("RGB").save(
        buffer, format="JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last = data.rfind(b"\xff\xda")
    return data[:-2] + data[last:-2] * extra_scans + data[-2:]


def _gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("P", (40, 40)), "GIF"))
    struct.pack_into("<HH", data, 6, width, height)
    return bytes(data)


def not_images() -> list[Upload]:
    pdf = _encode(_cell_like(), "PDF")
    return [
        Upload("empty.jpg", b"", "image/jpeg"),
        Upload("report.pdf", pdf, "application/pdf"),
        Upload("report-renamed.jpg", pdf, "image/jpeg"),
        Upload("page.html", b"<!doctype html><html><body><img src=x onerror=alert(1)></body>"
               b"</html>", "text/html"),
        Upload("vector.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="9999999" '
               b'height="9999999"><circle r="5"/></svg>', "image/svg+xml"),
        Upload("notes.txt", "résultats: neutrophile 60 %".encode(), "text/plain"),
        Upload("data.json", b'{"image": "not really"}', "application/json"),
        Upload("archive.zip", b"PK\x03\x04" + bytes(200), "application/zip"),
        Upload("program.jpg", b"\x7fELF\x02\x01\x01" + bytes(500), "image/jpeg"),
        Upload("zeros.png", bytes(4096), "image/png"),
        Upload("random.webp", random.Random(7).randbytes(5000), "image/webp"),
        Upload("riff-not-webp.webp", b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(40), "image/webp"),
        Upload("tiff-header-only.tif", b"II*\x00\x08\x00\x00\x00", "image/tiff"),
        Upload("eps.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "image/jpeg"),
    ]


def damaged(seed_files: list[Upload]) -> list[Upload]:
    """Truncations, header-only copies, flipped bytes and wrong extensions of valid files."""
    rng = random.Random(2026)
    uploads: list[Upload] = []
    for upload in seed_files:
        data = upload.data
        stem, _, ext = upload.name.rpartition(".")
        for fraction in (0.02, 0.3, 0.5, 0.6, 0.9):
            uploads.append(Upload(f"{stem}-cut{int(fraction * 100)}.{ext}",
                                  data[:max(1, int(len(data) * fraction))], upload.mime))
        uploads.append(Upload(f"{stem}-minus1.{ext}", data[:-1], upload.mime))
        for variant in range(4):
            corrupted = bytearray(data)
            for _ in range(1 + variant * 6):
                position = rng.randrange(min(len(corrupted), 16 + variant * 200))
                corrupted[position] = rng.randrange(256)
            uploads.append(Upload(f"{stem}-flip{variant}.{ext}", bytes(corrupted), upload.mime))
        wrong = "png" if ext != "png" else "jpg"
        uploads.append(Upload(f"{stem}-really-{ext}.{wrong}", data, "application/octet-stream"))
    return uploads


def corpus() -> list[Upload]:
    seeds = valid_images()
    return seeds + bombs() + not_images() + damaged(seeds)
