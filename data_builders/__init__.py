"""TFDS dataset builders for the LBIE experiments."""
