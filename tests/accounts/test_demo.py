import pytest

from accounts import demo
from accounts.models import DataSource, Device, Friendship, User
from accounts.selectors import agreements_pending_for, data_source_is_authorized, friend_ids_of

pytestmark = pytest.mark.django_db


def test_the_demo_loads_twice_without_duplicates_and_citizens_can_be_captured():
    demo.load_demo()
    counts = (User.objects.count(), Device.objects.count(), Friendship.objects.count())

    lines = demo.load_demo()

    assert (User.objects.count(), Device.objects.count(), Friendship.objects.count()) == counts
    lin = User.objects.get(username="lin.wei")
    assert all(data_source_is_authorized(user_id=lin.id, source=source) for source in DataSource)
    assert agreements_pending_for(user=lin) == []
    assert friend_ids_of(user_id=lin.id) == {User.objects.get(username="zhang.min").id}
    guest = Device.objects.get().user
    assert guest.is_guest
    assert data_source_is_authorized(user_id=guest.id, source=DataSource.PHONE_STEPS)
    assert any("demo-guest-device-0001" in line for line in lines)
