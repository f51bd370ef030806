"""Parent/child links of a blueprint: audit, safe repair, sync, and reports."""
