"""Numbered event logs shared by every kind of queued work (fine-tunes, generations)."""
