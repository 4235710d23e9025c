"""recap: a research log and link tracker for vision-model researchers."""

__version__ = "0.1.0"
