#!/usr/bin/env python3
"""Writes examples/data/shapes.png: a 96 x 64 RGB picture (a sky gradient, a red disc, a blue square and a
yellow triangle on grass) for the image examples and their tests. Standard library only (zlib, struct), so
that the committed file can be remade anywhere: python3 examples/data/make_shapes_png.py"""

import os
import struct
import zlib

WIDTH, HEIGHT = 96, 64


def pixel(x, y):
    if y >= 48:  # grass
        return (60, 140 + (x * 3) % 40, 50)
    colour = (110 + y, 160 + y, 235)  # sky, lighter towards the horizon
    if (x - 24) ** 2 + (y - 22) ** 2 <= 12 ** 2:
        colour = (220, 40, 40)
    if 50 <= x < 70 and 20 <= y < 40:
        colour = (40, 60, 200)
    if 76 <= x < 92 and 44 - y >= 0 and abs(x - 84) <= (44 - y) * 8 // 24 and y >= 20:
        colour = (240, 210, 40)
    return colour


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def main():
    rows = b"".join(b"\x00" + bytes(v for x in range(WIDTH) for v in pixel(x, y)) for y in range(HEIGHT))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shapes.png")
    with open(path + ".partial", "wb") as f:
        f.write(png)
    os.replace(path + ".partial", path)
    print(f"wrote {path}: {WIDTH} x {HEIGHT} RGB, {len(png)} bytes")


if __name__ == "__main__":
    main()
