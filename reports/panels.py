"""The "Predicted value" section of the customer 360 page (registered in ``ready``)."""

from __future__ import annotations

from customers.panels import ProfilePanel, register_profile_panel
from reports.models import CustomerPrediction


def prediction_panel(*, request, customer, show_pii: bool) -> dict:
    """The customer's latest prediction and its fit (both ``None`` when not predicted yet).

    Model figures, not personal data: shown to everyone who may open the profile. One query
    (the prediction joined with its fit).
    """
    prediction = (
        CustomerPrediction.objects.select_related("fit").filter(customer_id=customer.pk).first()
    )
    return {"prediction": prediction, "fit": prediction.fit if prediction else None}


register_profile_panel(
    ProfilePanel(
        name="prediction",
        template="reports/_prediction_panel.html",
        context=prediction_panel,
        order=60,
    )
)
