#!/usr/bin/env python3
"""Draws Natter's app icons (the favicon.svg design) as PNGs for the web app manifest.

Pure Python (zlib + struct) so it needs nothing installed. Run once; the PNGs are committed:
    python3 scripts/make-icons.py
"""
import struct
import zlib
from pathlib import Path

BG = (0x4F, 0x46, 0xE5)
FG = (0xFF, 0xFF, 0xFF)
# The "N" of favicon.svg in its 64x64 box.
N = [(18, 46), (18, 18), (24, 18), (40, 36), (40, 18), (46, 18), (46, 46), (40, 46), (24, 28), (24, 46)]


def inside(poly, x, y):
    hit = False
    j = len(poly) - 1
    for i in range(len(poly)):
        xi, yi = poly[i]
        xj, yj = poly[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            hit = not hit
        j = i
    return hit


def icon(size, maskable):
    # Maskable icons fill the square; their content must sit in the central 80% safe zone.
    scale = size / 64 * (0.7 if maskable else 1.0)
    offset = (size - 64 * scale) / 2
    radius = 0 if maskable else 14 * size / 64
    rows = []
    for py in range(size):
        row = bytearray([0])
        for px in range(size):
            # 4x4 supersampling for smooth edges.
            cover_bg = cover_fg = 0
            for sy in range(4):
                for sx in range(4):
                    x, y = px + (sx + 0.5) / 4, py + (sy + 0.5) / 4
                    cx = min(max(x, radius), size - radius)
                    cy = min(max(y, radius), size - radius)
                    if radius and (x - cx) ** 2 + (y - cy) ** 2 > radius ** 2:
                        continue
                    cover_bg += 1
                    if inside(N, (x - offset) / scale, (y - offset) / scale):
                        cover_fg += 1
            a = cover_bg / 16
            f = cover_fg / max(cover_bg, 1)
            rgb = [round(BG[k] * (1 - f) + FG[k] * f) for k in range(3)]
            row += bytes(rgb + [round(a * 255)])
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


out = Path(__file__).resolve().parent.parent / "public" / "icons"
out.mkdir(exist_ok=True)
for size, maskable, name in [(192, False, "icon-192.png"), (512, False, "icon-512.png"),
                             (512, True, "maskable-512.png"), (192, True, "maskable-192.png"),
                             (180, True, "apple-touch-icon.png")]:
    (out / name).write_bytes(icon(size, maskable))
    print(name)
