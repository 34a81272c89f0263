"""``python -m rlgru.cli``: the ``rlgru`` command without its console script."""

import sys

from rlgru.cli import main

sys.exit(main())
