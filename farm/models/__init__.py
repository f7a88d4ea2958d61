"""Network definitions, one small module per family."""
