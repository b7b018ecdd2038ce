"""Entry points: the ``hematovision`` command line, the demo and the Bot API stand-in."""
