"""Experiments: RD sweeps, the reproduce pipeline and reports (joins everything below)."""
