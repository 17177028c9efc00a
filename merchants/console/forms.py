"""Forms of the merchant console. They validate input only; the views call the services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.api.dates import validate_day
from merchants.models import OFFER_NUMBER_BOUNDS, MerchantStaff, Offer, bounded

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format=DATETIME_LOCAL, **kwargs)


class SignInForm(AuthenticationForm):
    """Django's sign-in form; the view adds the attempt limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocomplete="username", autocapitalize="none")
        self.fields["password"].widget.attrs.update(autocomplete="current-password")

    def username_for_limits(self) -> str:
        """The username sent, as authentication will look it up (this field's own cleaning:
        trimmed, NFKC-normalized) and case-folded: every spelling of one account counts against
        the same sign-in limit."""
        return self.fields["username"].to_python(self.data.get("username", "")).casefold()


OFFER_FIELDS = [
    "title",
    "description",
    "category",
    "price_coins",
    "total_stock",
    "limit_per_person",
    "sale_starts_at",
    "sale_ends_at",
    "coupon_valid_days",
    "districts",
    "refunds_on_expiry",
]


class OfferForm(forms.ModelForm):
    """What an owner writes. Never saved by the form: `offer_create` / `offer_update` do that."""

    image = forms.ImageField(
        label=_("picture"),
        required=False,
        help_text=_("JPEG, PNG or WebP, at least 200×200 pixels, at most 5 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    class Meta:
        model = Offer
        fields = OFFER_FIELDS
        widgets = {
            "sale_starts_at": DateTimeLocalInput(),
            "sale_ends_at": DateTimeLocalInput(),
            "description": forms.Textarea(attrs={"rows": 3}),
            "districts": forms.CheckboxSelectMultiple(),
        }
        help_texts = {"districts": _("None ticked: valid in every district.")}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The model's bounds, which the form would otherwise not check (`_post_clean` below).
        for name, (lowest, highest) in OFFER_NUMBER_BOUNDS.items():
            self.fields[name].validators += bounded(name)
            self.fields[name].widget.attrs.update(min=lowest, max=highest)
        for name in ("sale_starts_at", "sale_ends_at"):
            self.fields[name].input_formats = [DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]
            self.fields[name].validators.append(validate_day)
        if self.instance.pk is None:
            now = timezone.localtime().replace(second=0, microsecond=0)
            self.initial.setdefault("sale_starts_at", now)
            self.initial.setdefault("sale_ends_at", now + timedelta(days=30))

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        starts, ends = data.get("sale_starts_at"), data.get("sale_ends_at")
        if starts and ends and ends <= starts:
            self.add_error("sale_ends_at", _("The sale must end after it starts."))
        return data

    def _post_clean(self) -> None:
        # Skip the model's own validation against the instance: the services own the offer's state.
        pass


class StaffAddForm(forms.Form):
    user_id = forms.UUIDField(
        label=_("person's id"),
        help_text=_("The id shown on the person's profile page in the app."),
    )
    role = forms.ChoiceField(label=_("role"), choices=MerchantStaff.Role.choices, initial="clerk")


class VerifyForm(forms.Form):
    code = forms.CharField(label=_("coupon code"), max_length=32, required=False)
    token = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["code"].widget.attrs.update(
            autocomplete="off",
            autocapitalize="characters",
            spellcheck="false",
            inputmode="text",
            placeholder="XXXX-XXXX-XXXX",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not data.get("code", "").strip() and not data.get("token", "").strip():
            raise forms.ValidationError(_("Type the coupon's code or scan its QR code."))
        return data


class ReportFilterForm(forms.Form):
    date_from = forms.DateField(
        label=_("from"),
        required=False,
        validators=[validate_day],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = forms.DateField(
        label=_("to"),
        required=False,
        validators=[validate_day],
        widget=forms.DateInput(attrs={"type": "date"}),
    )
