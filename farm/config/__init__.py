"""What a run is asked to do: trials/*.yaml and a preset read into one checked configuration,
the settings each family kind and the evaluator accept, and the plan of trials. Imports no torch
and no Ray, so checking a YAML file is quick."""
