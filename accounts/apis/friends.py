"""Invite codes and friends."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import errors, selectors, services
from accounts.apis.common import (
    OPEN_WITHOUT_AGREEMENTS,
)
from core.api.errors import ApplicationError
from core.api.views import JsonApiView


class FriendOutput(serializers.Serializer):
    public_id = serializers.UUIDField()
    nickname = serializers.CharField()


class InviteOutput(serializers.Serializer):
    code = serializers.CharField()
    link = serializers.CharField()


def _invite(invite) -> dict:
    from django.conf import settings

    link = settings.ACCOUNTS_INVITE_LINK_TEMPLATE.format(code=invite.code)
    return InviteOutput({"code": invite.code, "link": link}).data


class MyInviteApi(JsonApiView):
    """The person's invite code and link; POST makes a new one (old links stop working)."""

    @extend_schema(responses=InviteOutput)
    def get(self, request: Request) -> Response:
        return Response(_invite(services.invite_code_get_or_create(user=request.user)))

    @extend_schema(request=None, responses={200: InviteOutput})
    def post(self, request: Request) -> Response:
        return Response(_invite(services.invite_code_rotate(user=request.user)))


class InvitationApi(JsonApiView):
    """Who invites you (shown before accepting)."""

    @extend_schema(responses=FriendOutput)
    def get(self, request: Request, code: str) -> Response:
        inviter = selectors.inviter_for_code(code=code)
        if inviter is None:
            raise ApplicationError(errors.INVITE_CODE_UNKNOWN)
        return Response(FriendOutput(inviter).data)


class FriendsApi(JsonApiView):
    """The person's friends; POST accepts an invitation by its code."""

    class InvitationAcceptInput(serializers.Serializer):
        code = serializers.CharField(max_length=16)

    @extend_schema(responses=FriendOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(FriendOutput(selectors.friends_of(user=request.user), many=True).data)

    @extend_schema(request=InvitationAcceptInput, responses={201: FriendOutput})
    def post(self, request: Request) -> Response:
        data = self.InvitationAcceptInput(data=request.data)
        data.is_valid(raise_exception=True)
        friend = services.friendship_accept(user=request.user, code=data.validated_data["code"])
        return Response(FriendOutput(friend).data, status=status.HTTP_201_CREATED)


class FriendApi(JsonApiView):
    permission_classes = OPEN_WITHOUT_AGREEMENTS

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, public_id) -> Response:
        services.friendship_remove(user=request.user, friend_public_id=public_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
