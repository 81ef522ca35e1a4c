"""Model adapters behind a lazy registry (see registry.py).

``base`` (the adapter contract: ModelAdapter, LoadOptions; the shapes Clip,
Prediction, Generation from ``shapes``), ``capabilities`` (what a family
declares it can do, and the requests the engines send),
``registry`` and ``loading`` (folders, hub cache, quantisation), ``scoring``
and ``suffix`` (closed-set label scoring on a shared prefix), the transformers
families (``hf_alm`` and its subclasses, ``clap``), the embedded ``reference``
classifier, the ``oracle`` and ``tiny`` (random-weight test checkpoints).
"""
