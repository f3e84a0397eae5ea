"""``python -m detect_track.cli``: the same as the ``detect-track`` console script."""

import sys

from detect_track.cli import main

sys.exit(main())
