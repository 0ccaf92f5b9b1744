# Put this folder first on PYTHONPATH to run as on a machine without tllib: its submodules do not exist.
raise ImportError("tllib is hidden by tests/shims/no_tllib")
