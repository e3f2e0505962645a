"""``python -m functionlayer_mcp``: the same as the ``functionlayer-mcp`` command."""

import sys

from functionlayer_mcp._cli import main

sys.exit(main())
