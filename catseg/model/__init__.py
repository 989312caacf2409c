"""The networks, their configs and losses, saved model versions and where to find them."""
