"""Circle ④ keeps no tables yet: report read models (daily rollups) arrive with the reports."""
