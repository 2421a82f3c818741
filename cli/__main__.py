"""``python -m cli`` runs the ``aar`` command (for environments without the console script)."""

import sys

from cli.main import main

sys.exit(main())
