"""Training: the Lightning system, data loading, and the ``fit`` entry point."""
