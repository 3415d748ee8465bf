"""Packing and unpacking of stream payloads as the manifest (``gen.elaborate``) describes them
(the testbenches and the host driver use it).

A payload is a flat bit vector; ``Payload(fields)`` turns a dict of leaf-field values into an int
and back. Arrays are leaves named ``name.index``; ``pack_array``/``unpack_array`` handle them.
"""

from __future__ import annotations

__all__ = ["Payload"]


class Payload:
    def __init__(self, fields: dict[str, dict]):
        self.fields = fields

    def pack(self, values: dict[str, int]) -> int:
        word = 0
        for name, value in values.items():
            f = self.fields[name]
            width, signed = f["width"], f["signed"]
            lo, hi = (
                (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
            )
            if not lo <= value <= hi:
                raise ValueError(f"payload field {name}={value} does not fit: allowed [{lo}, {hi}]")
            word |= (value & ((1 << width) - 1)) << f["offset"]
        return word

    def unpack(self, word: int, name: str) -> int:
        f = self.fields[name]
        width = f["width"]
        value = (word >> f["offset"]) & ((1 << width) - 1)
        if f["signed"] and value >> (width - 1):
            value -= 1 << width
        return value

    def array(self, name: str) -> list[str]:
        """Leaf names of array ``name`` in index order."""
        names = [n for n in self.fields if n.startswith(name + ".")]
        return sorted(names, key=lambda n: int(n.rsplit(".", 1)[1]))

    def pack_array(self, name: str, values) -> dict[str, int]:
        return dict(zip(self.array(name), (int(v) for v in values), strict=True))

    def unpack_array(self, word: int, name: str) -> list[int]:
        return [self.unpack(word, n) for n in self.array(name)]
