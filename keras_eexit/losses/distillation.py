"""Knowledge-distillation term: KL(teacher_τ ‖ student_τ) on student exits."""

from keras import ops

from keras_eexit.utils.validation import invalid_value


def distillation_kl(teacher_logits, student_logits, temperature):
    """Per-sample `τ² · KL(softmax(t/τ) ‖ softmax(s/τ))`.

    The `τ²` factor keeps gradient magnitudes comparable across temperatures
    (Hinton et al., 2015).

    Args:
        teacher_logits: `(batch, classes)`; treated as a constant.
        student_logits: `(batch, classes)`.
        temperature: τ > 0.

    Returns:
        A float32 tensor of shape `(batch,)`.
    """
    t = ops.stop_gradient(ops.cast(teacher_logits, "float32")) / temperature
    s = ops.cast(student_logits, "float32") / temperature
    log_p = ops.log_softmax(t, axis=-1)
    log_q = ops.log_softmax(s, axis=-1)
    kl = ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1)
    return kl * (temperature**2)


class Distillation:
    """Objective term: `Σ_{k ∈ students} w · mean_i τ²·KL(teacher ‖ exit_k)`.

    The teacher is either the model's own final exit (`teacher="final"`,
    Phuong & Lampert's distillation-based joint training; its logits are
    a constant for this term) or a frozen snapshot of the model taken by the
    regime (`teacher="snapshot"`, whose final exit is used).

    Args:
        students: 0-based indices of the student exits.
        temperature: τ > 0.
        weight: the factor `w` (for Algorithm 5, `1 - α`).
        teacher: `"final"` or `"snapshot"`.

    Example:

    ```python
    term = Distillation(students=[0, 1], temperature=3.0, weight=0.9)
    ```
    """

    name = "distillation"

    def __init__(self, students, temperature=3.0, weight=1.0,
                 teacher="final"):
        if not temperature > 0:
            raise invalid_value("temperature", "a number > 0", temperature)
        if teacher not in ("final", "snapshot"):
            raise invalid_value("teacher", "'final' or 'snapshot'", teacher)
        self.students = list(students)
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.teacher = teacher

    def __call__(self, model, x, y, y_pred, sample_weight=None):
        """Returns `(weighted total, {exit_name: mean KL})`."""
        names = model.exit_names
        if self.teacher == "snapshot":
            teacher = model.regime_state.teacher_logits(x)
        else:
            teacher = y_pred[names[-1]]
        total, per_exit = 0.0, {}
        for k in self.students:
            values = distillation_kl(teacher, y_pred[names[k]],
                                     self.temperature)
            if sample_weight is not None:
                values = values * ops.reshape(
                    ops.cast(sample_weight, "float32"), ops.shape(values))
            per_exit[names[k]] = self.weight * ops.mean(values)
            total = total + per_exit[names[k]]
        return total, per_exit
