"""Predictions: ONNX export and runtime, letterboxing, views, the Predictor, colour splash and scores."""
