"""The torch-free core every Rushes process shares: settings, storage and its keys, the bases
catalogue and memory planning, domain errors, logging, and queued work's status and leases.

It imports nothing else of ours (``service``, ``worker``, ``trainer``), so the API, the workers
and the engine can all stand on it; ``pyproject.toml``'s import contracts check that.
"""
