import datetime

import factory
from django.utils import timezone

from accounts import services
from accounts.models import DataSourceAuthorization, District, User


class DistrictFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = District
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda number: f"district-{number}")
    name = factory.Sequence(lambda number: f"第{number}区")
    name_en = factory.Sequence(lambda number: f"District {number}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda number: f"person{number}")
    nickname = factory.Faker("first_name")
    district = factory.SubFactory(DistrictFactory)
    password = factory.django.Password("a-long-test-password")


class GuestFactory(UserFactory):
    is_guest = True
    district = None


def authorization_granted(
    user: User, source: str, *, granted_at: datetime.datetime | None = None
) -> DataSourceAuthorization:
    """The person authorized `source` at `granted_at` (a year ago by default), through the service.

    A partner's records count only for activity since the grant: a test's rides of the last days
    need a grant from before them, as a person who signed up long ago has.
    """
    authorization = services.data_source_authorize(user=user, source=source)
    authorization.granted_at = granted_at or timezone.now() - datetime.timedelta(days=365)
    DataSourceAuthorization.objects.filter(pk=authorization.pk).update(granted_at=authorization.granted_at)
    return authorization
