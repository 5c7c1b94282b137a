"""The Django host's users: two people in two organizations (a Django group each)."""

from django.contrib.auth.models import Group, User
from django.core.management import call_command

# email, first name, last name, organization, password
USERS = [
    ("ada@org-a.example", "Ada", "Lovelace", "org-a", "lovelace-1843"),
    ("grace@org-b.example", "Grace", "Hopper", "org-b", "hopper-1952"),
]


def setup() -> None:
    """Migrate the database and create the users (again: it changes nothing)."""
    call_command("migrate", interactive=False, verbosity=0)
    for email, first_name, last_name, organization, password in USERS:
        user, created = User.objects.get_or_create(
            username=email,
            defaults={"email": email, "first_name": first_name, "last_name": last_name},
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.add(Group.objects.get_or_create(name=organization)[0])
