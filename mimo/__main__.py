"""``python -m mimo``: the same as the ``mimo`` command."""

from mimo._cli import main

raise SystemExit(main())
