"""The top layer: the command line, replay and the demo, which wire the stages together."""
