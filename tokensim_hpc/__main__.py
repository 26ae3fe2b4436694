"""``python -m tokensim_hpc``: see :mod:`tokensim_hpc.cli`."""

from .cli import main

raise SystemExit(main())
