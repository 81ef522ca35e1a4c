"""Metrics: classification (UAR, WA, bootstrap, McNemar, Holm, Spearman), text (WER), tags (mAP, mACC).

The package hands every public name on, so ``from cuelab.core import metrics``
then ``metrics.uar(...)`` works wherever a metric is needed. It imports only
:mod:`cuelab.core.errors`: the lowest layer of the engine after the shared modules.
"""

from __future__ import annotations

from cuelab.core.metrics.base import UNPARSED, MetricsError, is_unparsed
from cuelab.core.metrics.classification import (
    ClassificationScores,
    ConfidenceInterval,
    McNemarResult,
    SeedAggregate,
    SpearmanResult,
    aggregate_seeds,
    bootstrap_ci,
    classification_scores,
    confusion_matrix,
    correct_mask,
    count_unparsed,
    encode_labels,
    holm,
    macc,
    mcnemar_exact,
    per_class_recall,
    spearman,
    uar,
    weighted_accuracy,
)
from cuelab.core.metrics.tags import average_precision, mean_average_precision
from cuelab.core.metrics.text import NORMALISER, normalise_text, wer, wer_counts, wer_from_counts

__all__ = [
    "NORMALISER",
    "UNPARSED",
    "ClassificationScores",
    "ConfidenceInterval",
    "McNemarResult",
    "MetricsError",
    "SeedAggregate",
    "SpearmanResult",
    "aggregate_seeds",
    "average_precision",
    "bootstrap_ci",
    "classification_scores",
    "confusion_matrix",
    "correct_mask",
    "count_unparsed",
    "encode_labels",
    "holm",
    "is_unparsed",
    "macc",
    "mcnemar_exact",
    "mean_average_precision",
    "normalise_text",
    "per_class_recall",
    "spearman",
    "uar",
    "weighted_accuracy",
    "wer",
    "wer_counts",
    "wer_from_counts",
]
