"""Words more than one page shows: how a model version is named on screen.

A helper for the pages, never a page itself: it lives beside app.py rather than in pages/,
because until the router has run once Streamlit serves every pages/*.py file as a page of
its own. The library and storage return facts; the pages word them here or in their own file.
"""

from __future__ import annotations

from storage.runs import ModelVersionView


def version_label(version: ModelVersionView) -> str:
    """A trained model version in a menu or a metric: its number, name, network and validation IoU."""
    score = f"IoU {version.val_iou:.3f}" if version.val_iou is not None else "no score"
    return f"#{version.id} {version.name} ({version.architecture}, {score})"
