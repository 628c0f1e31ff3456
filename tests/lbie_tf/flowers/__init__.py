"""Tests of the Oxford-102 flowers task."""
