"""Reports: the tables and plots of a run folder, and annotator agreement.

``build`` (the entry point: picks the report kind), ``emotion`` (UAR, WA,
bootstrap intervals, McNemar/Holm, Spearman, confusion), ``sseu`` (WER, mACC,
mAP per model × mode × SNR), ``stats`` (the emotion tables' rows), ``plots``
and ``agreement`` (annotator labels beside references and models). Everything
here is rebuilt from predictions.csv + run.json: a report never needs a model.
"""

from __future__ import annotations
