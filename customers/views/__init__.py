"""Circle ① pages, one module per topic: profiles, segments, imports, merges, preferences."""
