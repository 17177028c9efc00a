"""Views of the merchant console: thin, like the API's. Validate a form, call one service or
selector, render. Every view acts for the signed-in person's own merchant and nothing else."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from core.api.errors import ApplicationError
from merchants import errors, selectors, services
from merchants.apis.serializers import REPORT_COLUMNS
from merchants.console import ratelimit
from merchants.console.forms import OfferForm, ReportFilterForm, SignInForm, StaffAddForm, VerifyForm
from merchants.exports import csv_bytes
from merchants.models import Coupon, MerchantStaff, Offer

logger = logging.getLogger(__name__)

# A console session lasts a working shift; signing in again after that is cheap.
SESSION_SECONDS = 12 * 60 * 60

TOO_MANY_SIGN_INS = _("Too many sign-in attempts. Wait 15 minutes and try again.")
TOO_MANY_VERIFICATIONS = _("Too many verification attempts. Wait a minute and try again.")


def error_text(error: ApplicationError) -> str:
    return str(error.message or error.error.message)


def masked_name(user: User | None) -> str:
    """How a clerk sees who redeemed a coupon: enough to greet them, not enough to identify them."""
    if user is None:
        return str(_("a former member"))
    name = (user.nickname or user.username or "").strip()
    if not name:
        return "***"
    return name[0] + "*" * min(max(len(name) - 1, 1), 2)


def staff_required(*, owner_only: bool = False) -> Callable:
    """Signs the person in first; then only an approved merchant's staff (owners for owner pages)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect(f"{reverse('console:sign-in')}?next={request.path}")
            try:
                staff = selectors.staff_for_user(user=request.user, owner_only=owner_only)
            except ApplicationError as error:
                return render(
                    request,
                    "merchants/console/refused.html",
                    {"message": error_text(error), "code": error.error.code},
                    status=403,
                )
            request.staff = staff
            return view(request, staff, *args, **kwargs)

        return never_cache(wrapper)

    return decorator


def _own_offer(staff: MerchantStaff, public_id) -> Offer:
    offer = selectors.offers_of_merchant(merchant=staff.merchant).filter(public_id=public_id).first()
    if offer is None:
        raise Http404
    return offer


# --- Signing in and out -------------------------------------------------------------------------


@csrf_protect
@never_cache
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = ""
    form = SignInForm(request, data=request.POST or None)
    status = 200
    if request.method == "POST":
        # Counted before the password is checked, so attempts sent at the same moment are refused
        # past the limit instead of each being checked against a count none of them has raised yet.
        username = form.username_for_limits()
        address = ratelimit.client_address(request)
        within_username = ratelimit.attempt(ratelimit.SIGN_IN_PER_USERNAME, username)
        within_address = ratelimit.attempt(ratelimit.SIGN_IN_PER_ADDRESS, address)
        if not (within_username and within_address):
            logger.warning("console.sign_in_limited", extra={"address": address})
            form = SignInForm(request)
            form.initial["username"] = request.POST.get("username", "")
            return render(
                request,
                "merchants/console/sign_in.html",
                {"form": form, "next": next_url, "refusal": TOO_MANY_SIGN_INS},
                status=429,
            )
        if form.is_valid():
            user = form.get_user()
            if MerchantStaff.objects.filter(user=user).exists():
                ratelimit.reset(ratelimit.SIGN_IN_PER_USERNAME, username)
                ratelimit.give_back(ratelimit.SIGN_IN_PER_ADDRESS, address)
                login(request, user)
                request.session.set_expiry(SESSION_SECONDS)
                return HttpResponseRedirect(next_url or reverse("console:home"))
            form.add_error(None, errors.NOT_MERCHANT_STAFF.message)
        status = 400
    return render(request, "merchants/console/sign_in.html", {"form": form, "next": next_url}, status=status)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("console:sign-in")


@require_POST
def language(request: HttpRequest) -> HttpResponse:
    """Switches between Chinese and English for this browser (the locale middleware reads the cookie)."""
    code = request.POST.get("language", "")
    next_url = request.POST.get("next") or reverse("console:home")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = reverse("console:home")
    response = HttpResponseRedirect(next_url)
    if code in dict(settings.LANGUAGES):
        translation.activate(code)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME, code, max_age=365 * 24 * 3600, samesite="Lax", httponly=True
        )
    return response


# --- Home ---------------------------------------------------------------------------------------


@staff_required()
def home(request: HttpRequest, staff: MerchantStaff) -> HttpResponse:
    if not staff.is_owner:
        return redirect("console:verify")
    offers = selectors.offers_of_merchant(merchant=staff.merchant)
    return render(request, "merchants/console/offers.html", {"staff": staff, "offers": offers})


# --- Offers (owners) ----------------------------------------------------------------------------


def _offer_data(form: OfferForm) -> dict[str, Any]:
    data = {name: form.cleaned_data[name] for name in form.Meta.fields}
    data["districts"] = list(data["districts"])
    return data


@staff_required(owner_only=True)
def offer_create(request: HttpRequest, staff: MerchantStaff) -> HttpResponse:
    form = OfferForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                offer = services.offer_create(merchant=staff.merchant, **_offer_data(form))
                if form.cleaned_data.get("image"):
                    offer = services.offer_image_set(offer=offer, upload=form.cleaned_data["image"])
                if "submit_for_review" in request.POST:
                    offer = services.offer_submit(offer=offer)
        except ApplicationError as error:
            form.add_error(None, error_text(error))
        else:
            messages.success(request, _("Offer saved: %(title)s") % {"title": offer.title})
            return redirect("console:home")
    return render(request, "merchants/console/offer_form.html", {"staff": staff, "form": form, "offer": None})


@staff_required(owner_only=True)
def offer_edit(request: HttpRequest, staff: MerchantStaff, offer_id) -> HttpResponse:
    offer = _own_offer(staff, offer_id)
    form = OfferForm(request.POST or None, request.FILES or None, instance=offer)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                updated = services.offer_update(offer=offer, data=_offer_data(form))
                if form.cleaned_data.get("image"):
                    updated = services.offer_image_set(offer=updated, upload=form.cleaned_data["image"])
                if "submit_for_review" in request.POST and updated.status == Offer.Status.DRAFT:
                    updated = services.offer_submit(offer=updated)
        except ApplicationError as error:
            form.add_error(None, error_text(error))
        else:
            messages.success(request, _("Offer saved: %(title)s") % {"title": updated.title})
            return redirect("console:home")
    return render(
        request, "merchants/console/offer_form.html", {"staff": staff, "form": form, "offer": offer}
    )


OFFER_ACTIONS = {
    "submit": (services.offer_submit, _("Sent for review: %(title)s")),
    "pause": (services.offer_pause, _("Paused: %(title)s")),
    "resume": (services.offer_resume, _("Live again: %(title)s")),
    "end": (services.offer_end, _("Ended: %(title)s")),
}


@require_POST
@staff_required(owner_only=True)
def offer_action(request: HttpRequest, staff: MerchantStaff, offer_id, action: str) -> HttpResponse:
    if action not in OFFER_ACTIONS:
        raise Http404
    offer = _own_offer(staff, offer_id)
    service, done = OFFER_ACTIONS[action]
    try:
        service(offer=offer)
    except ApplicationError as error:
        messages.error(request, f"{offer.title}: {error_text(error)}")
    else:
        messages.success(request, done % {"title": offer.title})
    return redirect("console:home")


# --- Staff (owners) -----------------------------------------------------------------------------


def _display_name(member: MerchantStaff) -> str:
    return member.user.nickname or member.user.username


@staff_required(owner_only=True)
def staff_list(request: HttpRequest, staff: MerchantStaff) -> HttpResponse:
    form = StaffAddForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            added = services.staff_add(
                merchant=staff.merchant,
                user_public_id=form.cleaned_data["user_id"],
                role=form.cleaned_data["role"],
            )
        except ApplicationError as error:
            form.add_error("user_id", error_text(error))
        else:
            messages.success(
                request, _("Added: %(name)s") % {"name": added.user.nickname or added.user.username}
            )
            return redirect("console:staff")
    members = selectors.staff_list(merchant=staff.merchant)
    return render(request, "merchants/console/staff.html", {"staff": staff, "members": members, "form": form})


@require_POST
@staff_required(owner_only=True)
def staff_remove(request: HttpRequest, staff: MerchantStaff, staff_id) -> HttpResponse:
    member = selectors.staff_list(merchant=staff.merchant).filter(public_id=staff_id).first()
    if member is None:
        raise Http404
    try:
        services.staff_remove(staff=member)
    except ApplicationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(
            request, _("Removed: %(name)s") % {"name": member.user.nickname or member.user.username}
        )
    return redirect("console:staff")


@require_POST
@staff_required(owner_only=True)
def staff_role(request: HttpRequest, staff: MerchantStaff, staff_id) -> HttpResponse:
    member = selectors.staff_list(merchant=staff.merchant).filter(public_id=staff_id).first()
    role = request.POST.get("role", "")
    if member is None or role not in MerchantStaff.Role.values:
        raise Http404
    try:
        member = services.staff_change_role(staff=member, role=role)
    except ApplicationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(
            request,
            _("%(name)s is now: %(role)s")
            % {"name": _display_name(member), "role": member.get_role_display()},
        )
    return redirect("console:staff")


# --- Reports (owners) ---------------------------------------------------------------------------


def _report_rows(request: HttpRequest, staff: MerchantStaff) -> tuple[ReportFilterForm, list[dict]]:
    form = ReportFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = selectors.offer_report(
        merchant=staff.merchant, date_from=filters.get("date_from"), date_to=filters.get("date_to")
    )
    return form, rows


@staff_required(owner_only=True)
def reports(request: HttpRequest, staff: MerchantStaff) -> HttpResponse:
    form, rows = _report_rows(request, staff)
    totals = {key: sum(row[key] for row in rows) for key in ("issued", "verified", "expired", "coins_earned")}
    return render(
        request,
        "merchants/console/reports.html",
        {"staff": staff, "form": form, "rows": rows, "totals": totals, "query": request.GET.urlencode()},
    )


@staff_required(owner_only=True)
def reports_csv(request: HttpRequest, staff: MerchantStaff) -> HttpResponse:
    _form, rows = _report_rows(request, staff)
    filename = f"offers-report-{timezone.localdate():%Y%m%d}.csv"
    return HttpResponse(
        csv_bytes(rows, REPORT_COLUMNS),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- Verification at the counter (clerks and owners) --------------------------------------------


def _verified_today(staff: MerchantStaff) -> list[Coupon]:
    """The last coupons used at this merchant today, so the counter can check what it just did."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return list(
        selectors.coupons_of_merchant(merchant=staff.merchant)
        .filter(status=Coupon.Status.VERIFIED, verified_at__gte=today)
        .order_by("-verified_at")[:10]
    )


@staff_required()
def verify(request: HttpRequest, staff: MerchantStaff) -> HttpResponse:
    form = VerifyForm(request.POST or None)
    context: dict[str, Any] = {"staff": staff, "form": form}
    status = 200
    if request.method == "POST":
        within_user = ratelimit.attempt(ratelimit.VERIFY_PER_USER, str(request.user.pk))
        within_address = ratelimit.attempt(ratelimit.VERIFY_PER_ADDRESS, ratelimit.client_address(request))
        if not (within_user and within_address):
            logger.warning("console.verify_limited", extra={"staff": str(staff.public_id)})
            context["refusal"] = {"message": TOO_MANY_VERIFICATIONS, "code": "too_many_attempts"}
            context["recent"] = _verified_today(staff)
            return render(request, "merchants/console/verify.html", context, status=429)
        if form.is_valid():
            try:
                coupon = services.coupon_verify(
                    staff=staff,
                    token=form.cleaned_data.get("token", "").strip(),
                    code=form.cleaned_data.get("code", "").strip(),
                )
            except ApplicationError as error:
                context["refusal"] = {"message": error_text(error), "code": error.error.code}
                status = error.error.status
            else:
                coupon = Coupon.objects.select_related("user").get(pk=coupon.pk)
                context["verified"] = {
                    "title": coupon.title,
                    "holder": masked_name(coupon.user),
                    "code": coupon.display_code,
                    "verified_at": coupon.verified_at,
                }
                context["form"] = VerifyForm()
        else:
            status = 400
    context["recent"] = _verified_today(staff)
    return render(request, "merchants/console/verify.html", context, status=status)
