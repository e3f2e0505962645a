"""``python -m functionlayer_server._cli``: the ``functionlayer-server`` command."""

import sys

from functionlayer_server._cli import main

sys.exit(main())
