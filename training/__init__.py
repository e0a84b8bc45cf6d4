"""Training entry points of PIMC (``python -m training <command>``)."""
