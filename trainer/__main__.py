"""``python -m trainer``: see ``trainer.cli``."""

from trainer.cli import main
from trainer.process import flush_denormals

# Here rather than in ``main``, which tests call in their own process.
flush_denormals()
raise SystemExit(main())
