"""Experiment configurations as code (ml_collections)."""
