"""The `keras-eexit` command line interface."""
