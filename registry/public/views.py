"""The public registry's pages: every lot with its status, volume, methodology, retirements and their
beneficiaries; a lot's published contribution list (to recompute its Merkle root); a retirement's
page and certificate. Read-only, no sign-in. The language is `?lang=` (zh-hans or en), else the
browser's (Accept-Language)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.http import require_GET

from registry import selectors
from registry.certificates import retirement_certificate_png
from registry.exports import contributions_csv
from registry.models import MG_PER_TONNE

# The index shows this many lots a page, newest first: its cost stays that of a page, however many
# lots the registry holds.
LOTS_PER_PAGE = 20


def _in_requested_language(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        code = request.GET.get("lang", "")
        if code not in dict(settings.LANGUAGES):
            return view(request, *args, **kwargs)
        with translation.override(code):
            request.LANGUAGE_CODE = code
            return view(request, *args, **kwargs)

    return require_GET(wrapper)


def _tonnes(carbon_mg: int) -> str:
    return f"{carbon_mg / MG_PER_TONNE:,.3f}"


def _lot_row(lot) -> dict:
    return {
        "lot": lot,
        "status": selectors.status_label(lot),
        "volume_tonnes": _tonnes(lot.volume_mg),
        "methodology": sorted(
            ((item.behaviour, item.methodology_version.number) for item in lot.behaviours.all()),
            key=lambda pair: pair[0].sort_order,
        ),
        "retirements": list(lot.retirements.all()),
    }


@_in_requested_language
def lots(request: HttpRequest) -> HttpResponse:
    # A page number that is not one answers the first page, one past the end the last.
    page = Paginator(selectors.lots_public(), LOTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = [_lot_row(lot) for lot in page.object_list]
    return render(request, "registry/lots.html", {"rows": rows, "page": page})


@_in_requested_language
def lot(request: HttpRequest, lot_id) -> HttpResponse:
    found = selectors.lots_public().filter(public_id=lot_id).first()
    if found is None:
        raise Http404
    return render(request, "registry/lot.html", {"row": _lot_row(found), "events": found.events.all()})


@require_GET
def lot_contributions(request: HttpRequest, lot_id) -> HttpResponse:
    found = selectors.lots_public().filter(public_id=lot_id).first()
    if found is None:
        raise Http404
    response = HttpResponse(contributions_csv(lot=found), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lot-{found.public_id}-contributions.csv"'
    return response


@_in_requested_language
def retirement(request: HttpRequest, retirement_id) -> HttpResponse:
    found = selectors.retirement_public(public_id=retirement_id)
    if found is None:
        raise Http404
    return render(request, "registry/retirement.html", {"retirement": found})


@_in_requested_language
def retirement_certificate(request: HttpRequest, retirement_id) -> HttpResponse:
    found = selectors.retirement_public(public_id=retirement_id)
    if found is None:
        raise Http404
    return HttpResponse(retirement_certificate_png(retirement=found), content_type="image/png")
