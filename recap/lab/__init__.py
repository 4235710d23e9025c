"""The lab notebook: experiment specs, the runner, run records, compare and rerun."""
