# (filled in by its tests)
