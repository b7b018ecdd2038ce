"""Development and test support: the Bot API stand-in, the stack harness, child processes and the
demo. Run from a source checkout (``python -m devkit``); never packaged or shipped in the image."""
