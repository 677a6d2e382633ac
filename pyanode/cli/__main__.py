import sys

from pyanode.cli import main

sys.exit(main())
