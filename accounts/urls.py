from django.urls import path

from accounts.apis import data_sources, friends, notifications, pooling, profile, rights, sign_in

urlpatterns = [
    path("guests", sign_in.GuestApi.as_view(), name="guest-open"),
    path("agreements", sign_in.AgreementsCurrentApi.as_view(), name="agreements-current"),
    path("me", profile.MeApi.as_view(), name="me"),
    path("me/agreements", sign_in.MyAgreementsApi.as_view(), name="me-agreements"),
    path("me/avatar", profile.AvatarApi.as_view(), name="me-avatar"),
    path("me/identities", profile.IdentitiesApi.as_view(), name="me-identities"),
    path("me/identities/<int:identity_id>", profile.IdentityApi.as_view(), name="me-identity"),
    path(
        "me/joined-identities/seen",
        profile.JoinedIdentitiesSeenApi.as_view(),
        name="me-joined-identities-seen",
    ),
    path("me/merge", profile.MergeApi.as_view(), name="me-merge"),
    path("me/data-sources", data_sources.DataSourcesApi.as_view(), name="me-data-sources"),
    path(
        "me/data-sources/history", data_sources.DataSourceHistoryApi.as_view(), name="me-data-source-history"
    ),
    path("me/data-sources/<str:source>", data_sources.DataSourceApi.as_view(), name="me-data-source"),
    path("me/pooling-consent", pooling.PoolingConsentApi.as_view(), name="me-pooling-consent"),
    path(
        "me/pooling-consent/history",
        pooling.PoolingConsentHistoryApi.as_view(),
        name="me-pooling-consent-history",
    ),
    path("me/invite", friends.MyInviteApi.as_view(), name="me-invite"),
    path("me/export", rights.ExportApi.as_view(), name="me-export"),
    path("me/erasure", rights.ErasureApi.as_view(), name="me-erasure"),
    path("friends", friends.FriendsApi.as_view(), name="friends"),
    path("friends/invitations/<str:code>", friends.InvitationApi.as_view(), name="friend-invitation"),
    path("friends/<uuid:public_id>", friends.FriendApi.as_view(), name="friend"),
    path("notifications", notifications.NotificationsApi.as_view(), name="notifications"),
    path("notifications/unread-count", notifications.UnreadCountApi.as_view(), name="notifications-unread"),
    path(
        "notifications/read-all",
        notifications.NotificationsReadAllApi.as_view(),
        name="notifications-read-all",
    ),
    path(
        "notifications/preferences", notifications.PreferencesApi.as_view(), name="notification-preferences"
    ),
    path(
        "notifications/wechat-subscriptions",
        notifications.SubscriptionsApi.as_view(),
        name="notification-wechat-subscriptions",
    ),
    path(
        "notifications/<uuid:notification_id>/read",
        notifications.NotificationReadApi.as_view(),
        name="notification-read",
    ),
]
