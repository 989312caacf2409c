"""The dataset's photos and masks: decoding, intake, import and export formats, mask maths, consistency checks."""
