"""`footfall-sensor doctor`: pure checks over facts, and the probes that gather the facts."""
