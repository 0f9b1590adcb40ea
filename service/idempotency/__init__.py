"""Idempotency keys: a retried create returns the first attempt's answer instead of acting twice."""
