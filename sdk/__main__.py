"""``python -m vrgv`` is the ``vrgv`` command."""
import sys

from vrgv.cli import main

sys.exit(main())
