"""Pictures and words about a run: the figures every stage draws, the curves, the summary text
and the report. Imports no torch and no Ray, so `--report-only` starts fast."""
