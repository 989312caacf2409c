"""Fabric 7.4 canvas JSON as streamlit-drawable-canvas 0.13 sends it, for the canvas tests.

The verbatim samples were produced by the Fabric.js 7.4 bundled in streamlit-drawable-canvas
0.13 (run under node), so the tests pin the exact serialisation the Annotate page receives;
the builders make objects of the same shape (checked against the samples in test_canvas.py)
for the kinds the page's tools create: a Path (brush, eraser), a Polygon and a Rect (box).
"""

from __future__ import annotations

import json

import numpy as np

from catseg.annotate.canvas_edits import ADD_COLOUR, ADD_FILL_COLOUR, BOX_COLOUR

# Verbatim Fabric 7.4 toObject() of a freedraw stroke (PencilBrush, width 12)
# through the canvas points FREEDRAW_POINTS.
FREEDRAW_POINTS = [(12.5, 40), (30, 42), (55.25, 60), (80, 61), (81, 90), (60, 110)]
FREEDRAW_JSON = json.loads(
    '{"type":"Path","version":"7.4.0","originX":"center","originY":"center","left":46.5755,"top'
    '":75,"width":68.1751,"height":70.024,"fill":null,"stroke":"#ff00a0","strokeWidth":12,"stro'
    'keDashArray":null,"strokeLineCap":"round","strokeDashOffset":0,"strokeLineJoin":"round","s'
    'trokeUniform":false,"strokeMiterLimit":10,"scaleX":1,"scaleY":1,"angle":0,"flipX":false,"f'
    'lipY":false,"opacity":1,"shadow":null,"visible":true,"backgroundColor":"","fillRule":"nonz'
    'ero","paintFirst":"fill","globalCompositeOperation":"source-over","skewX":0,"skewY":0,"pat'
    'h":[["M",12.488,39.988],["Q",12.5,40,21.25,41],["Q",30,42,42.625,51],["Q",55.25,60,67.625,'
    '60.5],["Q",80,61,80.5,75.5],["Q",81,90,70.5,100],["L",59.988,110.012]]}'
)

# Verbatim Fabric 7.4 objects after being moved/scaled/rotated/flipped/skewed
# in edit mode, each with its origin re-expressed (right/left, center/bottom),
# and "scene": where Fabric itself puts the path's end points, the polygon's
# points, or the rect's corners (tl, tr, br, bl), in canvas px.
TRANSFORMED = json.loads(
    '[{"json":{"type":"Path","version":"7.4.0","originX":"right","originY":"center","left":87.5'
    '287,"top":146.572,"width":92.2023,"height":36.5376,"fill":null,"stroke":"#ff00a0","strokeW'
    'idth":15,"strokeDashArray":null,"strokeLineCap":"round","strokeDashOffset":0,"strokeLineJo'
    'in":"round","strokeUniform":false,"strokeMiterLimit":4,"scaleX":0.665,"scaleY":1.8748,"ang'
    'le":-22.4442,"flipX":false,"flipY":true,"opacity":1,"shadow":null,"visible":true,"backgrou'
    'ndColor":"","fillRule":"nonzero","paintFirst":"fill","globalCompositeOperation":"source-ov'
    'er","skewX":18.9338,"skewY":-14.1109,"path":[["M",119.07340019213427,158.75702920065356],['
    '"Q",119.08840019213427,158.74202920065358,111.42598682382423,166.56054801380287],["Q",103.'
    '76357345551419,174.3790668269522,109.60926605603157,172.9346037227356],["Q",115.4549586565'
    '4897,171.490140618519,108.36356608819382,176.455244273625],["Q",101.27217351983867,181.420'
    '34792873096,89.76930488588721,172.70721710645932],["Q",78.26643625193574,163.9940862841877'
    ',66.67670633256282,165.40333138331928],["Q",55.08697641318988,166.81257648245088,40.269357'
    '51795273,157.0918042315598],["Q",25.451738622715567,147.3710319806687,28.432517896142087,1'
    '45.32828046024235],["L",31.428297169568612,143.270528939816]]},"scene":[[87.5825,175.7013]'
    ',[77.9711,159.9426],[73.4054,147.9725],[70.7039,141.3116],[58.8074,144.3467],[45.3705,152.'
    '9373],[29.9844,162.6868],[27.1463,181.6852],[30.4069,186.0401]]},{"json":{"type":"Path","v'
    'ersion":"7.4.0","originX":"left","originY":"center","left":71.1127,"top":37.7029,"width":5'
    '4.2112,"height":44.7798,"fill":null,"stroke":"#ff00a0","strokeWidth":15,"strokeDashArray":'
    'null,"strokeLineCap":"round","strokeDashOffset":0,"strokeLineJoin":"round","strokeUniform"'
    ':true,"strokeMiterLimit":4,"scaleX":1.5119,"scaleY":1.7008,"angle":57.1611,"flipX":false,"'
    'flipY":false,"opacity":1,"shadow":null,"visible":true,"backgroundColor":"","fillRule":"non'
    'zero","paintFirst":"fill","globalCompositeOperation":"source-over","skewX":0,"skewY":0,"pa'
    'th":[["M",74.37505213035273,49.411154838332976],["Q",74.36005213035273,49.396154838332976,'
    '63.413333179621645,57.890749901016584],["Q",52.46661422889056,66.38534496370019,51.1258327'
    '5238323,61.87106930505067],["Q",49.78505127587591,57.35679364640115,48.35405635338,66.6251'
    '3125763512],["Q",46.92306143088409,75.89346886886909,59.87329344026433,80.44285052243751],'
    '["Q",72.82352544964456,84.99223217600593,64.28097697407054,90.38000320334916],["Q",55.7384'
    '2849849651,95.76777423069241,68.00608505634875,88.27154205333045],["Q",80.273741614201,80.'
    '7753098759685,91.09953669183867,79.91317973235303],["L",101.94033176947634,79.036049588737'
    '54]]},"scene":[[129.0197,57.2037],[107.9151,51.0997],[92.1529,39.1619],[83.0869,40.0256],['
    '72.7857,67.4027],[62.1993,82.1668],[68.2664,84.9542],[99.1444,106.581],[109.2859,119.5432]'
    ']},{"json":{"type":"Polygon","version":"7.4.0","originX":"right","originY":"center","left"'
    ':184.2425,"top":180.851,"width":30.979,"height":33.8271,"fill":"rgba(255, 0, 160, 0.3)","s'
    'troke":"#ff00a0","strokeWidth":3,"strokeDashArray":null,"strokeLineCap":"butt","strokeDash'
    'Offset":0,"strokeLineJoin":"miter","strokeUniform":false,"strokeMiterLimit":4,"scaleX":2.1'
    '265,"scaleY":1.6137,"angle":43.0194,"flipX":false,"flipY":true,"opacity":1,"shadow":null,"'
    'visible":true,"backgroundColor":"","fillRule":"nonzero","paintFirst":"fill","globalComposi'
    'teOperation":"source-over","skewX":0,"skewY":0,"points":[{"x":157.29056815490617,"y":182.5'
    '7897950828962},{"x":140.91103145429446,"y":171.70565232713972},{"x":152.90109786805746,"y"'
    ':148.75186844205106},{"x":168.65534118314054,"y":150.31926504351165},{"x":171.890021931328'
    '8,"y":155.59859984349396}]},"scene":[[177.8322,137.5392],[140.3954,126.6037],[133.7667,171'
    '.0798],[159.9863,192.0871],[170.8275,190.5516]]},{"json":{"rx":0,"ry":0,"type":"Rect","ver'
    'sion":"7.4.0","originX":"right","originY":"bottom","left":322.0643,"top":164.0291,"width":'
    '110.665,"height":49.2126,"fill":"rgba(0,0,0,0)","stroke":"#ffd400","strokeWidth":4,"stroke'
    'DashArray":null,"strokeLineCap":"butt","strokeDashOffset":0,"strokeLineJoin":"miter","stro'
    'keUniform":true,"strokeMiterLimit":4,"scaleX":0.923,"scaleY":2.4982,"angle":-62.3512,"flip'
    'X":false,"flipY":false,"opacity":1,"shadow":null,"visible":true,"backgroundColor":"","fill'
    'Rule":"nonzero","paintFirst":"fill","globalCompositeOperation":"source-over","skewX":0,"sk'
    'ewY":0},"scene":[[163.0573,198.3036],[210.4591,107.82],[319.3646,164.8726],[271.9627,255.3'
    '562]]}]'
)


def _midpoint(a, b):
    return ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)


def freedraw_object(points, width, colour=ADD_COLOUR):
    """A Path object as 0.13's freedraw brush emits it (Fabric PencilBrush + Path)."""
    nudge = width / 1000
    first, second = points[0], points[1]
    sx, sy = 1, 0
    if len(points) > 2:
        sx = -1 if points[2][0] < second[0] else (0 if points[2][0] == second[0] else 1)
        sy = -1 if points[2][1] < second[1] else (0 if points[2][1] == second[1] else 1)
    path = [["M", first[0] - sx * nudge, first[1] - sy * nudge]]
    current, following = first, second
    index = 1
    for index in range(1, len(points)):
        if current != following:
            path.append(["Q", current[0], current[1], *_midpoint(current, following)])
        current = points[index]
        if index + 1 < len(points):
            following = points[index + 1]
    if len(points) > 2:
        before = points[index - 1]
        sx = 1 if current[0] > before[0] else (0 if current[0] == before[0] else -1)
        sy = 1 if current[1] > before[1] else (0 if current[1] == before[1] else -1)
    path.append(["L", current[0] + sx * nudge, current[1] + sy * nudge])
    # Fabric's bounding box treats Q as the cubic (P0, P1, P1, P2); sample it densely.
    samples = [np.array(path[0][1:])]
    start = samples[0]
    for command in path[1:]:
        if command[0] == "Q":
            control, end = np.array(command[1:3]), np.array(command[3:5])
            t = np.linspace(0, 1, 2001)[:, None]
            samples.append((1 - t) ** 3 * start + 3 * (1 - t) ** 2 * t * control
                           + 3 * (1 - t) * t ** 2 * control + t ** 3 * end)
            start = end
        else:
            start = np.array(command[1:3])
            samples.append(start[None, :])
    every = np.vstack(samples)
    low, high = every.min(axis=0), every.max(axis=0)
    centre = (low + high) / 2
    return {
        "type": "Path", "version": "7.4.0", "originX": "center", "originY": "center",
        "left": float(centre[0]), "top": float(centre[1]),
        "width": float(high[0] - low[0]), "height": float(high[1] - low[1]),
        "fill": None, "stroke": colour, "strokeWidth": width, "strokeDashArray": None,
        "strokeLineCap": "round", "strokeDashOffset": 0, "strokeLineJoin": "round",
        "strokeUniform": False, "strokeMiterLimit": 10, "scaleX": 1, "scaleY": 1, "angle": 0,
        "flipX": False, "flipY": False, "opacity": 1, "shadow": None, "visible": True,
        "backgroundColor": "", "fillRule": "nonzero", "paintFirst": "fill",
        "globalCompositeOperation": "source-over", "skewX": 0, "skewY": 0, "path": path,
    }


def polygon_object(points, stroke_width=2, colour=ADD_COLOUR, fill=ADD_FILL_COLOUR):
    """A Polygon as 0.13's polygon tool emits it: absolute points, origin at the bbox centre."""
    array = np.array(points, float)
    low, high = array.min(axis=0), array.max(axis=0)
    return {
        "type": "Polygon", "version": "7.4.0", "originX": "center", "originY": "center",
        "left": float((low[0] + high[0]) / 2), "top": float((low[1] + high[1]) / 2),
        "width": float(high[0] - low[0]), "height": float(high[1] - low[1]),
        "fill": fill, "stroke": colour, "strokeWidth": stroke_width, "strokeLineCap": "butt",
        "strokeLineJoin": "miter", "strokeUniform": False, "strokeMiterLimit": 4,
        "scaleX": 1, "scaleY": 1, "angle": 0, "flipX": False, "flipY": False, "opacity": 1,
        "visible": True, "skewX": 0, "skewY": 0,
        "points": [{"x": float(x), "y": float(y)} for x, y in points],
    }


def rect_object(left, top, width, height, stroke_width=3):
    """A Rect as 0.13's rect tool emits it (origin left/top, strokeUniform)."""
    return {
        "rx": 0, "ry": 0, "type": "Rect", "version": "7.4.0", "originX": "left", "originY": "top",
        "left": left, "top": top, "width": width, "height": height, "fill": "rgba(0,0,0,0)",
        "stroke": BOX_COLOUR, "strokeWidth": stroke_width, "strokeUniform": True,
        "scaleX": 1, "scaleY": 1, "angle": 0, "flipX": False, "flipY": False,
        "skewX": 0, "skewY": 0, "visible": True,
    }
