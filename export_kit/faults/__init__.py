"""Planted faults: broken copies of a folder that verify must catch (selftest)."""
