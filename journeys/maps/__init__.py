"""Personas and journey maps co-edited by marketing and sales: cells, revisions, presence, comments."""
