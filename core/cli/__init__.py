"""The command line (`python -m core`): the parser and its commands. Imports any layer of core below it."""
