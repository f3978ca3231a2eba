"""`footfall-sensor`: the command-line shell over the packages below it."""
