"""A function of a model's layers, compiled for the running Keras backend.

Inference code (`evaluation.collect`, batched early exit on JAX, the
benchmarks) calls Keras layers inside a compiled function. The one
backend-specific piece is here:

* TensorFlow: a `tf.function` traced with relaxed shapes (variables are
  read at every call);
* JAX: `jax.jit` of the function run in a `keras.StatelessScope` whose
  variable values are arguments, passed afresh at every call, so a model
  trained after the first call is never run with its old weights (a
  closure over the variables would bake them into the XLA program as
  constants). XLA compiles once per input shape;
* PyTorch: the function itself, eager, under `torch.no_grad()` (no
  autograd graph is recorded for inference).

Example:

>>> import keras
>>> layer = keras.layers.Dense(2)
>>> _ = layer(keras.ops.ones((1, 3)))
>>> double = compile_layers_call(layer, lambda x: 2 * layer(x))
>>> tuple(double(keras.ops.ones((4, 3))).shape)
(4, 2)
"""

import keras


def compile_layers_call(owner, function):
    """`function`, compiled for the backend, reading `owner`'s weights.

    Args:
        owner: the layer or model whose variables `function` uses (all
            of them are passed in on JAX; a layer built later is not).
        function: a function of tensors (and nested structures of them)
            calling `owner`'s layers; returns tensors.

    Returns:
        A callable with `function`'s arguments and results.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function, reduce_retracing=True)
    if backend == "torch":
        import torch

        def no_grad(*args):
            with torch.no_grad():
                return function(*args)
        return no_grad
    if backend != "jax":
        return function
    import jax

    variables = list(owner.variables)

    def stateless(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables,
                                                          values))):
            return function(*args)

    compiled = jax.jit(stateless)

    def call(*args):
        return compiled([v.value for v in variables], *args)

    return call
