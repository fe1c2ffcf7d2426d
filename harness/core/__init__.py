"""The bottom layer: recipe, presets, run configuration, overrides, units, the result schema and errors.
Nothing here imports torch or any other layer of the harness."""
