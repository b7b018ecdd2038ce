"""Training, calibration and evaluation of the cell classifier."""
