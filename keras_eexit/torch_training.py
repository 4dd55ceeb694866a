"""Everything training needs that is PyTorch code, in one place.

Keras' PyTorch trainer calls `train_step(data)` eagerly, as TensorFlow's
does, so the composed train step (`models/train_step.py`) runs unchanged
but for a few pieces, each the PyTorch form of a TensorFlow / JAX one:

* `apply_gradients`: an update's gradient and optimizer step. Keras' own
  PyTorch step calls `loss.backward()`, which writes `.grad` of every
  tensor the loss reads that requires a gradient (a teacher snapshot,
  EWC's anchors, ...) and leaves them there. Here the update
  differentiates exactly `model.trainable_variables`
  (`torch.autograd.grad`) and `optimizer.apply` updates them alone, so
  a frozen stage keeps its weights and its optimizer slots bit for bit,
  as on TensorFlow (`tf.GradientTape`) and JAX (`models/jax_step.py`);
* `squared_gradient_sums`: exact per-sample squared gradients for EWC's
  Fisher (Zniber et al., eq. 3), one backward pass per sample.
  `torch.func.vmap` cannot batch Keras' PyTorch convolution (it clones
  its input in the channels-last memory format, which `vmap` does not
  support), so the samples are a loop; the result equals TensorFlow's
  one-pass rewrite within 1e-6;
* `rescale_gradient`: gradient equilibrium's scaled identity as a
  `torch.autograd.Function` (`tf.custom_gradient` / `jax.custom_vjp`);
* `variable_gradients`: a gradient for variables that are not
  trainable (ZTW's ensemble phase; a `tf.GradientTape` watching them on
  TensorFlow).

Only public `torch` and Keras APIs are used here (`keras.StatelessScope`,
`optimizer.apply`); the one private Keras name, the loss tracker, goes
through `compat.update_loss_tracker`.
"""

import functools
import warnings

import keras

from keras_eexit import chain
from keras_eexit.compat import update_loss_tracker


def apply_gradients(model, loss_fn, x):
    """Differentiates `loss_fn` for the trainable variables and applies the
    optimizer to them (PyTorch).

    Keras' PyTorch train step without its forward pass and loss: the loss
    tracker is updated, the loss scaled for mixed precision
    (`optimizer.scale_loss`), and variables that get no gradient (a scale
    no exit reads) are left to the optimizer's own filtering.

    Args:
        model: a compiled `MultiExitModel`.
        loss_fn: `() -> (loss, y_pred)`, the forward pass and the loss.
        x: the batch's inputs (their first axis is the batch size).

    Returns:
        `y_pred`, the forward pass's outputs.

    Example:

    ```python
    def loss_fn():
        y_pred = model(x, training=True)
        return model.compute_loss(x, y, y_pred), y_pred

    y_pred = apply_gradients(model, loss_fn, x)
    ```
    """
    import torch

    loss, y_pred = loss_fn()
    update_loss_tracker(model, loss, batch_size(x))
    variables = list(model.trainable_variables)
    if not variables:
        warnings.warn("The model does not have any trainable weights.",
                      stacklevel=2)
        return y_pred
    scaled = model.optimizer.scale_loss(loss)
    gradients = torch.autograd.grad(
        scaled, [v.value for v in variables], allow_unused=True)
    with torch.no_grad():
        model.optimizer.apply(list(gradients), variables)
    return y_pred


def train_step(model, data):
    """Keras' train step on PyTorch, through `apply_gradients`.

    Args:
        model: a compiled `MultiExitModel`.
        data: a batch `(x, y[, sample_weight])`, labels per exit.

    Returns:
        The metrics' logs.

    Example:

    ```python
    logs = train_step(model, (x, {"exit_1": y, "exit_2": y}))
    ```
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

    def loss_fn():
        y_pred = model(x, training=True)
        return model.compute_loss(x, y, y_pred, sample_weight), y_pred

    y_pred = apply_gradients(model, loss_fn, x)
    return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)


def squared_gradient_sums(model, exit, variables, x, y, per_batch=False):
    """`Σ_i (∂ log ŷ_ν(y_i | x_i) / ∂θ)²` for each variable θ, on PyTorch.

    The model runs in inference mode (its samples do not interact), one
    backward pass per sample.

    Args:
        model: a `MultiExitModel`.
        exit: the exit NUMBER ν (1..K).
        variables: the variables to differentiate (a list).
        x: a batch of inputs (a tensor, or a structure of tensors).
        y: `(batch,)` integer class labels.
        per_batch: square the gradient of the batch's summed
            log-likelihood instead, divided by the batch size (an
            approximation: cross terms between samples are included).

    Returns:
        A list of tensors shaped like `variables`.

    Example:

    ```python
    sums = squared_gradient_sums(model, 1, fisher_variables(model, 1),
                                 x, y)
    ```
    """
    import torch

    x = keras.tree.map_structure(keras.ops.convert_to_tensor, x)
    y = keras.ops.convert_to_tensor(y, "int64")
    size = int(keras.ops.shape(y)[0])
    targets = [v.value for v in variables]

    def gradients(inputs, labels):
        # Differentiated through stand-ins: frozen variables (a Fisher
        # pass freezes nothing, `empirical_fisher` may run on a frozen
        # model) do not require gradients themselves.
        stand_ins = [t.detach().requires_grad_(True) for t in targets]
        with keras.StatelessScope(
                state_mapping=list(zip(variables, stand_ins))):
            logits = chain.run_to_exit(model, inputs, exit - 1, False)
        log_p = torch.log_softmax(logits.float(), dim=-1)
        total = log_p.gather(1, labels[:, None]).sum()
        return torch.autograd.grad(total, stand_ins, allow_unused=True)

    def dense(gradient, target):
        return torch.zeros_like(target) if gradient is None else gradient

    if per_batch:
        return [torch.square(dense(g, t)) / size
                for g, t in zip(gradients(x, y), targets)]
    sums = [torch.zeros_like(t) for t in targets]
    for i in range(size):
        sample = keras.tree.map_structure(lambda t: t[i:i + 1], x)
        for total, g in zip(sums, gradients(sample, y[i:i + 1])):
            if g is not None:
                total.add_(torch.square(g))
    return sums


def rescale_gradient(x, scale):
    """Returns `x`; the gradient flowing back through it is scaled by
    `scale` (a `torch.autograd.Function`).

    Args:
        x: a tensor.
        scale: a Python float.

    Returns:
        A tensor equal to `x`.

    Example:

    ```python
    v = torch.tensor(2.0, requires_grad=True)
    torch.autograd.grad(rescale_gradient(v, 0.5) * 3.0, v)  # (1.5,)
    ```
    """
    return _rescale_function().apply(x, float(scale))


@functools.cache
def _rescale_function():
    """The `torch.autograd.Function` class (torch imported on first use)."""
    import torch

    class RescaleGradient(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t, scale):
            ctx.scale = scale
            return t.view_as(t)

        @staticmethod
        def backward(ctx, upstream):
            return upstream * ctx.scale, None

    return RescaleGradient


def variable_gradients(forward, loss_of, variables):
    """A loss and its gradient for any variables, trainable or not
    (PyTorch).

    Keras' PyTorch variables that are not trainable do not require a
    gradient; a step that learns such variables (ZTW's ensemble
    parameters) differentiates leaf copies of their values instead: the
    forward pass reads the copies (`keras.StatelessScope`), the loss is
    computed outside the scope (so the metrics it updates are real
    updates), and the optimizer applies the gradients to the variables.

    Args:
        forward: `() -> y_pred`, the forward pass.
        loss_of: `y_pred -> loss`, a scalar.
        variables: the Keras variables to differentiate.

    Returns:
        `(loss, y_pred, gradients)`, one gradient per variable (zeros
        where the loss does not read it), detached.

    Example:

    ```python
    loss, y_pred, grads = variable_gradients(
        lambda: model(x, training=False),
        lambda y_pred: model.compute_loss(x, y, y_pred), variables)
    optimizer.apply(grads, variables)
    ```
    """
    import torch

    leaves = [v.value.detach().clone().requires_grad_(True)
              for v in variables]
    with keras.StatelessScope(state_mapping=list(zip(variables, leaves))):
        y_pred = forward()
    loss = loss_of(y_pred)
    gradients = torch.autograd.grad(loss, leaves, allow_unused=True)
    gradients = [torch.zeros_like(leaf) if g is None else g.detach()
                 for g, leaf in zip(gradients, leaves)]
    return loss.detach(), y_pred, gradients


def batch_size(x):
    """The batch size of `x` (a tensor or a structure of them)."""
    return int(keras.ops.shape(keras.tree.flatten(x)[0])[0])
