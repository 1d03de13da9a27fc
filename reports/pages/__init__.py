"""The reports of the catalogue, one module each; importing this package registers them."""

from reports.pages import (  # noqa: F401
    circulation,
    clv,
    customers,
    cx_value,
    lift,
    nps,
    overview,
    value,
)
