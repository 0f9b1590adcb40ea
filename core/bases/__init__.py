"""Base models the service offers for fine-tuning, described without loading them (no torch)."""
