import os
import sys

# the oracle module and the examples' utils are imported by path, not installed
sys.path.insert(0, os.path.dirname(__file__))
