"""Datasets: where each comes from (registry, download), tables and image folders read, a
table's reversible encoding, splits, and an experiment's datasets prepared (prepare_tables.py,
prepare_images.py, where the judge is trained) into what a trial gets (trial_data.py)."""
