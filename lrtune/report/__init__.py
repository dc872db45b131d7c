"""Writers and plots. Compute plot data in one function, draw in another; never show()."""
