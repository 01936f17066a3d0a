import sys

from clipsae.cli import main

sys.exit(main())
