import factory

from accounts.models import District, User


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
