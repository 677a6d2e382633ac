"""`python -m pyanode.julia status | install [--gpu] [--timeout SECONDS]` (= `pyanode julia`)."""

import sys

from pyanode.cli import main

sys.exit(main(["julia", *sys.argv[1:]]))
