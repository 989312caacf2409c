"""Tests for catseg.annotate.colours: the one reader of colour text (canvas colours, splash colours)."""

from __future__ import annotations

import pytest

from catseg.annotate.colours import parse_css_colour


@pytest.mark.parametrize("text, expected", [
    ("#ff00a0", ((255, 0, 160), 1.0)),
    ("#FFF", ((255, 255, 255), 1.0)),
    (" 00e5ff ", ((0, 229, 255), 1.0)),  # no '#': how a shell user types it
    ("#ff00a080", ((255, 0, 160), 128 / 255)),
    ("rgba(255, 0, 160, 0.3)", ((255, 0, 160), 0.3)),
    ("rgba(0,0,0,0)", ((0, 0, 0), 0.0)),
    ("rgb(0 229 255 / 50%)", ((0, 229, 255), 0.5)),
])
def test_colours_the_canvas_and_the_pages_use(text, expected):
    assert parse_css_colour(text) == expected


@pytest.mark.parametrize("text", [None, "", "none", "transparent", "red", "#12345", "#ggg", "rgb(1, 2)", 42])
def test_no_colour_or_unknown_text_is_none(text):
    assert parse_css_colour(text) is None
