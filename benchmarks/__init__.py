"""Scripts that compare agents and measure the trainer (not part of the installed package)."""
