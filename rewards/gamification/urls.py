"""Routes of leaderboards, ratings, badges, reports and the green credit profile, under /api/v1/."""

from django.urls import path

from rewards.gamification import apis

urlpatterns = [
    path("leaderboards/<str:period>", apis.LeaderboardApi.as_view(), name="leaderboard"),
    path("ratings", apis.RatingHistoryApi.as_view(), name="ratings"),
    path("ratings/ambassadors", apis.AmbassadorsApi.as_view(), name="ratings-ambassadors"),
    path("badges", apis.BadgesApi.as_view(), name="badges"),
    path("reports/<str:period>/<str:label>.png", apis.ReportCardApi.as_view(), name="report-card"),
    path("reports/<str:period>/<str:label>", apis.ReportApi.as_view(), name="report"),
    path("credit-profile", apis.MyCreditProfileApi.as_view(), name="credit-profile"),
    path("credit-profile/consents", apis.CreditConsentListApi.as_view(), name="credit-profile-consents"),
    path(
        "credit-profile/consents/<slug:partner>",
        apis.CreditConsentDetailApi.as_view(),
        name="credit-profile-consent",
    ),
    path("credit-profile/accesses", apis.CreditAccessListApi.as_view(), name="credit-profile-accesses"),
    path("partner/credit-profile", apis.PartnerCreditProfileApi.as_view(), name="partner-credit-profile"),
]
