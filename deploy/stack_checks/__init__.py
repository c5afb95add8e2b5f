"""The checks of deploy/check_stack.py, one module per group; `common` and `promql` are shared."""
