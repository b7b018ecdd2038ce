"""Celery adapter: consumes task contracts from ``core.tasks`` and runs the classifier."""
