"""The `keras-eexit` command line interface.

Its public interface is the `keras-eexit` command (`docs/cli.md`); each
sub-command is a module `keras_eexit.cli.<name>` with `add_parser` and
`run`, listed in `keras_eexit.cli.main.SUBCOMMANDS`. The package exports
no Python names.
"""

__all__ = []
