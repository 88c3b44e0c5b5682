"""Learning curves: a recipe trained on growing, nested shares of each fold's training patients, scored on the same
held-out patients (glioscope.curve.run)."""

from glioscope.curve.run import learning_curve

__all__ = ["learning_curve"]
