# Put this folder first on PYTHONPATH to run as on a machine without torch: reading logs must not need it.
raise ImportError("torch is hidden by tests/shims/no_torch")
