"""Rewards routes, under /api/v1/: the person's wallet, welfare projects and donations; leaderboards,
ratings, badges, reports and the green credit profile (rewards.gamification.urls)."""

from django.urls import path

from rewards import apis
from rewards.gamification.urls import urlpatterns as gamification_urlpatterns
from rewards.groups.urls import urlpatterns as groups_urlpatterns

urlpatterns = [
    path("wallet", apis.WalletApi.as_view(), name="wallet"),
    path("wallet/history", apis.WalletHistoryApi.as_view(), name="wallet-history"),
    path("wallet/history/<int:entry_id>", apis.WalletHistoryEntryApi.as_view(), name="wallet-history-entry"),
    path("welfare/projects", apis.ProjectListApi.as_view(), name="welfare-projects"),
    path("welfare/projects/<uuid:project_id>", apis.ProjectDetailApi.as_view(), name="welfare-project"),
    path(
        "welfare/projects/<uuid:project_id>/donations",
        apis.ProjectDonateApi.as_view(),
        name="welfare-project-donate",
    ),
    path("me/statements/imports", apis.PeerStatementListApi.as_view(), name="statements-imports"),
    path("welfare/donations", apis.DonationListApi.as_view(), name="welfare-donations"),
    path("welfare/donations/<uuid:donation_id>", apis.DonationDetailApi.as_view(), name="welfare-donation"),
    path(
        "welfare/donations/<uuid:donation_id>/certificate.png",
        apis.DonationCertificateApi.as_view(),
        name="welfare-donation-certificate",
    ),
]

urlpatterns += gamification_urlpatterns + groups_urlpatterns
