"""Markers in an entry body that expand into generated sections (``recap show``, the site).

``recap new`` writes them into the template; the week's linked bookmarks and runs are data (Link
rows), so the expanded sections always reflect the database, notes edited later included.
"""

LINKS_MARKER = "<!-- recap:links -->"
RUNS_MARKER = "<!-- recap:runs -->"
