"""Personas and journey maps that marketing and sales co-edit: cells, history, presence, talk."""
