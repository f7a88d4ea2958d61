"""Plumbing every stage shares: errors a user can fix, crash-safe writes, where an experiment
lives (a folder or a bucket), and the clock of a run's phases. Imports no torch and no Ray."""
