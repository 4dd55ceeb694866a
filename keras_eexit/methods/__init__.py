"""Early-exit methods of issue 17, each fitted to the chain of stages."""

from keras_eexit.methods.dfs import dfs

__all__ = ["dfs"]
