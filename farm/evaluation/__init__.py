"""Final scoring on the held-out test split: a table's TSTR and TRTR, and for images the pools
and the evaluator (a Ray Train job, the only module that knows Ray Train)."""
