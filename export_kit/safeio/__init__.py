"""Input that may be hostile and output that must never be half-written: bounded reads, resource limits,
atomic writes."""
