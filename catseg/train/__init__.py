"""Training: the input pipeline, the fit itself, the train/hold-out split, background runs and time budgets."""
