from django.urls import path

from accounts import apis

urlpatterns = [
    path("guests", apis.GuestApi.as_view(), name="guest-open"),
    path("agreements", apis.AgreementsCurrentApi.as_view(), name="agreements-current"),
    path("me", apis.MeApi.as_view(), name="me"),
    path("me/agreements", apis.MyAgreementsApi.as_view(), name="me-agreements"),
    path("me/avatar", apis.AvatarApi.as_view(), name="me-avatar"),
    path("me/identities", apis.IdentitiesApi.as_view(), name="me-identities"),
    path("me/identities/<int:identity_id>", apis.IdentityApi.as_view(), name="me-identity"),
    path("me/merge", apis.MergeApi.as_view(), name="me-merge"),
    path("me/data-sources", apis.DataSourcesApi.as_view(), name="me-data-sources"),
    path("me/data-sources/history", apis.DataSourceHistoryApi.as_view(), name="me-data-source-history"),
    path("me/data-sources/<str:source>", apis.DataSourceApi.as_view(), name="me-data-source"),
    path("me/invite", apis.MyInviteApi.as_view(), name="me-invite"),
    path("me/export", apis.ExportApi.as_view(), name="me-export"),
    path("me/erasure", apis.ErasureApi.as_view(), name="me-erasure"),
    path("friends", apis.FriendsApi.as_view(), name="friends"),
    path("friends/invitations/<str:code>", apis.InvitationApi.as_view(), name="friend-invitation"),
    path("friends/<uuid:public_id>", apis.FriendApi.as_view(), name="friend"),
]
