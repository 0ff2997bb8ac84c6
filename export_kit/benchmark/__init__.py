"""Bench: worker-process latency sampling, tuning, baselines and the gate's statistics."""
