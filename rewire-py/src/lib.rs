// Filled in by the Python issue.
