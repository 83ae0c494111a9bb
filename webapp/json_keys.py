"""Whether a JSON text can repeat a key, decided from its bytes without decoding it.

An object repeats a key only if it has two keys, that is a ``,`` directly inside it (not
inside a nested array or string). :func:`no_object_has_two_keys` finds every ``,`` outside
strings and the bracket that directly encloses it, with array operations over the text: the
enclosing opener of a ``,`` at nesting level ``L`` is the last opener that reached level
``L`` before it (brackets balance in valid JSON), found for all of them at once by sorting
the structural characters by level (a stable radix sort) and carrying openers forward.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["no_object_has_two_keys"]

_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("{"), ord("[")]] = 1
_OPEN[[ord("}"), ord("]")]] = -1


def _outside_strings(text: npt.NDArray[np.uint8]) -> npt.NDArray[np.intp]:
    """Positions of the structural characters that are not inside a string (the text has
    no backslash, so every quote opens or closes one)."""
    structural = text == ord(",")
    for char in "{}[]":
        structural |= text == ord(char)
    candidates = np.flatnonzero(structural)
    # Inside a string when an odd number of quotes come before.
    quotes_before = np.cumsum(text == ord('"'), dtype=np.int32)[candidates]
    outside: npt.NDArray[np.intp] = candidates[(quotes_before & 1) == 0]
    return outside


def no_object_has_two_keys(span: bytes) -> bool | None:
    """True when no object in the valid JSON ``span`` has two or more keys (so none repeats
    one), False when one may; None when the span holds a backslash (not decided here)."""
    if b"\\" in span:
        return None
    if b"," not in span or b"{" not in span:
        return True
    text = np.frombuffer(span, dtype=np.uint8)
    where = _outside_strings(text)
    chars = text[where]
    step = _OPEN[chars].astype(np.int32)
    level = np.cumsum(step)
    # A comma sits at the level of the bracket around it; an opener at the level it opens.
    keep = step >= 0
    chars, level = chars[keep], level[keep]
    if not len(chars):
        return True
    if level.max() >= np.iinfo(np.uint16).max:
        return None
    order = np.argsort(level.astype(np.uint16), kind="stable")
    chars = chars[order]
    is_opener = chars != ord(",")
    last_opener = np.maximum.accumulate(np.where(is_opener, np.arange(len(chars)), -1))
    enclosing = chars[last_opener[~is_opener]]
    return not bool(np.any(enclosing == ord("{")))
