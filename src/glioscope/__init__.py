"""glioscope: deep-learning classification of brain tumours in MRI."""

__version__ = "0.1.0"
