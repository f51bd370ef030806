"""Management reports of a portal (issue 14): tables computed from the deals, their
stage history, the contractor directory and the users, rendered as text, csv, json,
jsonl, xlsx, an offline HTML page with charts, or a Google Sheet."""
