#!/usr/bin/env python3
"""Grow the farm: `python run_farm.py --preset smoke` (see --help and README.md)."""

import sys

from farm.pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main())
