"""Reading colour text: the one place a CSS colour string becomes numbers."""

from __future__ import annotations

import re
from typing import Any


def parse_css_colour(colour: Any) -> tuple[tuple[int, int, int], float] | None:
    """'#rgb', '#rrggbb' (with or without alpha digits), 'rgb(...)' or 'rgba(...)' to ((r, g, b), alpha).

    None for anything else: no colour, 'none', 'transparent', a colour name, bad text.
    The '#' may be left out, because it starts a comment in a shell and a colour given
    on the command line often comes without it.
    """
    if not isinstance(colour, str):
        return None
    text = colour.strip().lower()
    if text in ("", "none", "transparent"):
        return None
    match = re.fullmatch(r"#?([0-9a-f]+)", text)
    if match:
        digits = match.group(1)
        if len(digits) in (3, 4):
            digits = "".join(character * 2 for character in digits)
        if len(digits) not in (6, 8):
            return None
        rgb = (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
        alpha = int(digits[6:8], 16) / 255 if len(digits) == 8 else 1.0
        return rgb, alpha
    match = re.fullmatch(r"rgba?\(\s*([^)]*)\)", text)
    if not match:
        return None
    parts = [part for part in re.split(r"[\s,/]+", match.group(1)) if part]
    if len(parts) not in (3, 4):
        return None
    try:
        red, green, blue = (int(round(float(part))) for part in parts[:3])
        alpha = 1.0 if len(parts) == 3 else float(parts[3].rstrip("%")) / (100 if parts[3].endswith("%") else 1)
    except ValueError:
        return None
    return (red, green, blue), alpha
