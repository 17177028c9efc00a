"""Group routes, under /api/v1/."""

from django.urls import path

from rewards.groups import apis

urlpatterns = [
    path("groups", apis.GroupsApi.as_view(), name="groups"),
    path("groups/join", apis.GroupJoinApi.as_view(), name="groups-join"),
    path("groups/leaderboard", apis.GroupBoardApi.as_view(), name="groups-leaderboard"),
    path("groups/<uuid:group_id>", apis.GroupApi.as_view(), name="group"),
    path("groups/<uuid:group_id>/invite", apis.GroupInviteApi.as_view(), name="group-invite"),
    path("groups/<uuid:group_id>/invite.png", apis.GroupQrApi.as_view(), name="group-invite-qr"),
    path("groups/<uuid:group_id>/members", apis.GroupMembersApi.as_view(), name="group-members"),
    path(
        "groups/<uuid:group_id>/members/<uuid:member_id>", apis.GroupMemberApi.as_view(), name="group-member"
    ),
    path("groups/<uuid:group_id>/leaderboard", apis.GroupMemberBoardApi.as_view(), name="group-leaderboard"),
    path("groups/<uuid:group_id>/challenges", apis.GroupChallengesApi.as_view(), name="group-challenges"),
    path(
        "groups/<uuid:group_id>/challenges/<uuid:challenge_id>",
        apis.GroupChallengeApi.as_view(),
        name="group-challenge",
    ),
]
