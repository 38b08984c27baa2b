"""The command line: a thin Typer adapter. Each command lives in its own module and calls the core."""
