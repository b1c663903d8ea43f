"""CNI hop models, capture points, packet identity across captures, drop localisation (pure)."""
