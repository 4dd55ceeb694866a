"""Reports of evaluated multi-exit models, one module per report.

- `text`: tables as Markdown, CSV and strict JSON; atomic report files.
- `records`: run records (`run_record`: one regime × seed), grouping,
  per-seed aggregates and significance tests; the FLOP-convention captions.
- `comparison`: `comparison_report` / `write_comparison_report`, several
  regimes over several seeds (what `keras-eexit compare` writes), with the
  figures of `comparison_figures`.
- `evaluation`: `evaluation_report` / `write_evaluation_report`, one model
  (what `keras-eexit evaluate` writes).
- `latency`: `latency_report` / `write_latency_report`, one model's sweep
  and budgets in measured time (`keras-eexit evaluate --cost`).

The analyses' report (`keras-eexit analyze`) needs `keras_eexit.analysis`,
which sits above this package: it is `keras_eexit.analysis.report`.

Example:

```python
from keras_eexit import evaluation

outputs = evaluation.collect(model, splits.test)
result = evaluation.threshold_sweep(outputs)
evaluation.write_evaluation_report(outputs, result, "runs/evaluate")
records = [evaluation.run_record(outputs, result, regime="joint", seed=0)]
evaluation.write_comparison_report(records, "runs/compare")
```
"""

from keras_eexit.evaluation.reports.comparison import comparison_report
from keras_eexit.evaluation.reports.comparison import reference_budgets
from keras_eexit.evaluation.reports.comparison import write_comparison_report
from keras_eexit.evaluation.reports.comparison_figures import (
    comparison_figures)
from keras_eexit.evaluation.reports.evaluation import budget_rows
from keras_eexit.evaluation.reports.evaluation import evaluation_report
from keras_eexit.evaluation.reports.evaluation import write_evaluation_report
from keras_eexit.evaluation.reports.latency import latency_report
from keras_eexit.evaluation.reports.latency import write_latency_report
from keras_eexit.evaluation.reports.records import CONVENTION_CAPTIONS
from keras_eexit.evaluation.reports.records import EFFICIENCY
from keras_eexit.evaluation.reports.records import RECORD_KEYS
from keras_eexit.evaluation.reports.records import aggregate
from keras_eexit.evaluation.reports.records import group_records
from keras_eexit.evaluation.reports.records import reference_convention
from keras_eexit.evaluation.reports.records import run_record
from keras_eexit.evaluation.reports.records import significance
from keras_eexit.evaluation.reports.text import csv_text
from keras_eexit.evaluation.reports.text import json_text
from keras_eexit.evaluation.reports.text import markdown_table
from keras_eexit.evaluation.reports.text import write_files

__all__ = [
    "CONVENTION_CAPTIONS", "EFFICIENCY", "RECORD_KEYS", "aggregate",
    "budget_rows", "comparison_figures", "comparison_report", "csv_text",
    "evaluation_report", "group_records", "json_text", "latency_report",
    "markdown_table", "reference_budgets", "reference_convention",
    "run_record", "significance", "write_comparison_report",
    "write_evaluation_report", "write_files", "write_latency_report",
]
