"""`ExitDistillation`: KL(teacher_τ ‖ student_τ) on student exits."""

from keras import ops

from keras_eexit.losses.exit_term import ExitTerm
from keras_eexit.utils.validation import check_choice
from keras_eexit.utils.validation import check_number


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


class ExitDistillation(ExitTerm):
    """Objective term: `Σ_{k ∈ students} w · mean_i τ²·KL(teacher ‖ exit_k)`.

    The teacher is either the model's own final exit (`teacher="final"`,
    Phuong & Lampert's distillation-based joint training; its logits are
    a constant for this term) or the final exit of a frozen snapshot of
    the model taken by the regime (`teacher="snapshot"`,
    `Phase(snapshot_teacher=True)`).

    Named like the other per-exit terms (`ExitCrossEntropy`,
    `ExitDampingLoss`). It was `losses.Distillation`, the name of the
    regime that uses it (`regimes.Distillation`); `DistillationLoss` is
    taken by Keras (`keras.distillation.DistillationLoss`).
    `losses.Distillation` stays a deprecated alias for one release.

    Args:
        students: exit NUMBERS (1..K) of the student exits.
        temperature: τ > 0.
        weight: the factor `w` (for Algorithm 5 of "Strategies at a
            glance", `1 - α`).
        teacher: `"final"` or `"snapshot"`.

    Example:

    ```python
    term = ExitDistillation(students=[1, 2], temperature=3.0, weight=0.9)
    ```
    """

    name = "distillation"

    def __init__(self, students, temperature=3.0, weight=1.0,
                 teacher="final"):
        super().__init__(exits=students, weight=weight)
        self.temperature = check_number("temperature", temperature, 0.0,
                                        low_open=True)
        self.teacher = check_choice("teacher", teacher,
                                    ("final", "snapshot"))

    @property
    def students(self):
        """The student exits' numbers."""
        return list(self.exits)

    def per_sample(self, model, x, y, y_pred, positions):
        names = model.exit_names
        if self.teacher == "snapshot":
            teacher = model.regime_state.teacher_logits(x)
        else:
            teacher = y_pred[names[-1]]
        return [distillation_kl(teacher, y_pred[names[k]], self.temperature)
                for k in positions]
