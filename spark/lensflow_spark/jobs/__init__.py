"""Job entry points: parse arguments, read, call library functions, write, report."""
