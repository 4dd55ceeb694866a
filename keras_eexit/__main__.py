"""`python -m keras_eexit` runs the command line interface."""

import sys

from keras_eexit.cli.main import main

sys.exit(main())
