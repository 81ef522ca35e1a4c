"""PySide6 + pyqtgraph views over :mod:`cuelab.core`."""
