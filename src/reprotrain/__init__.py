"""reprotrain: raw data to a trained, evaluated and packaged model, reproducibly."""

__version__ = "0.1.0"
