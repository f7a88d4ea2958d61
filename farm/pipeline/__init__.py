"""The run top to bottom: the command line, then plan -> prepare -> grow -> export -> evaluate ->
report (farm/pipeline/experiment.py), and joining or starting Ray."""
