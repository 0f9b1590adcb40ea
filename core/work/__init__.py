"""Queued work of every kind: its status, lease columns (``lease``) and lease operations (``queue``).

Fine-tunes, generations and webhook deliveries all use the three.
"""
