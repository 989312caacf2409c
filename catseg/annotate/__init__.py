"""The Annotate page's geometry and edits: the canvas view, strokes and polygons, GrabCut."""
