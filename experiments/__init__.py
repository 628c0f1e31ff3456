"""Thin absl entry points for the LBIE experiments."""
