"""``python -m search.cli``: the ``paretotune`` command."""

import sys

from search.cli.main import main

sys.exit(main())
