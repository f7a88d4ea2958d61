"""Reusing what a farm grew: a finished experiment, a trial's generator, a generator file, and
`run_farm.py sample`. No Ray: a generator file samples with torch alone."""
