"""Verify: the checks that prove an artifact computes what the model computes, and their statistics."""
