"""catseg: label cat photos, train a U-Net, and make colour-splash pictures.

The library never imports streamlit; TensorFlow is imported lazily inside the
functions that need it so that light pages and CLI commands start fast.
"""

__version__ = "0.1.0"
