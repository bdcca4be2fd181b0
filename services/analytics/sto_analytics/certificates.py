"""Verification codes of certificates: short enough to type from paper, too many to guess.

A code is 10 symbols of Crockford's base-32 alphabet (no I, L, O or U), 50 random bits,
printed in two groups of five (``7KQ2M-XD9RT``). Typing is forgiving: case, spaces and dashes
do not matter, and O, I and L read as 0, 1 and 1. With a million certificates a guess hits one
in 10^9 tries; the verify page is rate limited per address on top of that.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
LENGTH = 10
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_code() -> str:
    """A fresh code as stored: 10 symbols, no dash."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def grouped(code: str) -> str:
    """The code as printed: two groups of five."""
    return f"{code[:5]}-{code[5:]}" if len(code) == LENGTH else code


def normalised(typed: str) -> str | None:
    """The stored form of what someone typed, or None when it cannot be a code."""
    code = "".join(typed.split()).replace("-", "").upper().translate(_READ_AS)
    if len(code) != LENGTH or any(symbol not in ALPHABET for symbol in code):
        return None
    return code
