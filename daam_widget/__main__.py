"""``python -m daam_widget run|analyze|gallery ...``: the same commands as ``daam-widget``."""

import sys

from .cli import main

sys.exit(main())
