"""Fill clinics with many users for the benchmark (bench/), fast.

Per clinic: one clinic admin (enrolled) and staff, every other one enrolled
with a confirmed authenticator app. Every account gets the same precomputed
password hash, because hashing a million passwords with Argon2 would take days.
Recovery codes are not created (10 PBKDF2 hashes per user); no page the
benchmark measures depends on them.

On PostgreSQL the rows go in with COPY (psycopg's copy), with the users
table's secondary indexes dropped during the load and built once afterwards,
so 1,000,000 users take well under 3 minutes; authenticator secrets come from
a pool of 1,000 encrypted keys (encrypting 500,000 would dominate the time).
Elsewhere (SQLite) bulk_create in batches.

Running it again with more clinics adds the missing clinics and leaves the
existing ones alone, so the benchmark can grow from 10,000 to 100,000 users.
"""

from __future__ import annotations

import time

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from clinics.models import Clinic
from users.models import User

DEFAULT_PASSWORD = "clinicauth-bench"
CLINIC_NAME = "Bench Clinic {:03d}"
BATCH = 2_000

FIRST_NAMES = [
    "Aaliyah", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
    "Kemi", "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zara", "Amir", "Bea", "Carlos", "Dana",
    "Emeka", "Fiona", "Goran", "Hana", "Ivan", "Jade", "Kofi", "Lena", "Mateo", "Nadia",
]
LAST_NAMES = [
    "Adeyemi", "Brennan", "Castillo", "Dubois", "Eriksen", "Fischer", "Gallagher", "Haddad",
    "Ivanova", "Jensen", "Kowalski", "Lindqvist", "Moreau", "Nakamura", "Okafor", "Petrov",
    "Quintero", "Rossi", "Schmidt", "Takahashi", "Umarov", "Vasquez", "Whitfield", "Xu",
    "Yilmaz", "Zielinski", "Abara", "Bergstrom", "Chowdhury", "Delgado", "Esposito", "Farrow",
    "Gupta", "Horvath", "Ibrahim", "Jovanovic", "Kaur", "Laurent", "Mensah", "Novak",
    "Oyelaran", "Pereira", "Quigley", "Ramirez", "Sorensen", "Tanaka", "Ueda", "Varga",
    "Wojcik", "Yamamoto", "Zhang", "Andersen", "Barros", "Costa", "Dimitrov", "Eze",
    "Fontaine", "Greco", "Hansen", "Iqbal", "Juarez", "Kim", "Lopez", "Marsh", "Nguyen",
    "Olsen", "Park", "Reyes", "Silva", "Torres", "Ward", "Young", "Zapata", "Baker",
    "Carter", "Dunn", "Ellis", "Foster", "Grant", "Hughes", "Irwin", "Jordan", "Knight",
    "Lowe", "Mills", "Nash", "Owens", "Palmer", "Rhodes", "Stone", "Turner", "Vaughn",
    "Walsh", "York", "Abbott", "Blake", "Cole", "Doyle", "Flynn",
]


def totp_device_model():
    """The model that holds authenticator apps: the one place seeding names it.

    devices.confirmed_totp_device() reads this model; if the device model
    changes there, change it here.
    """
    from clinic_auth.twofactor.models import EncryptedTOTPDevice

    return EncryptedTOTPDevice


def bench_username(clinic_no: int, n: int) -> str:
    return f"bench-c{clinic_no:03d}-admin" if n == 0 else f"bench-c{clinic_no:03d}-u{n:06d}"


def is_enrolled_index(n: int) -> bool:
    """Admin (n = 0) and every other staff member are enrolled: half the clinic."""
    return n % 2 == 0


class Command(BaseCommand):
    help = "Create benchmark clinics full of users, half with a confirmed authenticator app (fast, bulk)."

    def add_arguments(self, parser):
        parser.add_argument("--clinics", type=int, default=1, help="Number of bench clinics to have (default 1).")
        parser.add_argument(
            "--staff", type=int, default=10_000, help="Users per clinic, admin included (default 10000)."
        )
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help=f"Password of every account ({DEFAULT_PASSWORD}).")
        parser.add_argument("--mandatory", action="store_true", help="Turn Mandatory 2FA on for new clinics.")
        parser.add_argument("--delete", action="store_true", help="Remove every bench clinic and its users first.")

    def handle(self, *args, clinics: int, staff: int, password: str, mandatory: bool, delete: bool, **options):
        if clinics < 1 or staff < 1:
            raise CommandError("--clinics and --staff must be at least 1.")
        started = time.perf_counter()
        if delete:
            self.delete_bench_data()
        password_hash = make_password(password)  # once: every account shares it
        created_users = created_devices = 0
        todo = []
        for clinic_no in range(1, clinics + 1):
            clinic, _ = Clinic.objects.get_or_create(
                name=CLINIC_NAME.format(clinic_no), defaults={"mandatory_2fa": mandatory}
            )
            if not User.objects.filter(clinic=clinic).exists():
                todo.append((clinic, clinic_no))
        if todo and connection.vendor == "postgresql":
            created_users, created_devices = copy_clinics(todo, staff, password_hash)
        else:
            for clinic, clinic_no in todo:
                users, devices = self.fill_clinic(clinic, clinic_no, staff, password_hash)
                created_users += users
                created_devices += devices
        elapsed = time.perf_counter() - started
        total = User.objects.filter(clinic__name__startswith="Bench Clinic").count()
        self.stdout.write(
            f"Created {created_users} users and {created_devices} authenticator apps in {elapsed:.1f} s "
            f"({total} bench users in all; password: {password})."
        )

    @transaction.atomic
    def fill_clinic(self, clinic: Clinic, clinic_no: int, staff: int, password_hash: str) -> tuple[int, int]:
        Device = totp_device_model()
        users = devices = 0
        for start in range(0, staff, BATCH):
            batch = [self.new_user(clinic, clinic_no, n, password_hash) for n in range(start, min(start + BATCH, staff))]
            User.objects.bulk_create(batch)
            enrolled_names = [u.username for n, u in enumerate(batch, start) if is_enrolled_index(n)]
            ids = User.objects.filter(username__in=enrolled_names).values_list("pk", flat=True)
            Device.objects.bulk_create(
                Device(user_id=pk, name="Authenticator app", confirmed=True) for pk in ids
            )
            users += len(batch)
            devices += len(enrolled_names)
        return users, devices

    @staticmethod
    def new_user(clinic: Clinic, clinic_no: int, n: int, password_hash: str) -> User:
        username = bench_username(clinic_no, n)
        first = FIRST_NAMES[n % len(FIRST_NAMES)]
        last = LAST_NAMES[(n // len(FIRST_NAMES)) % len(LAST_NAMES)]
        return User(
            username=username,
            password=password_hash,
            first_name=first,
            last_name=last,
            email=f"{username}@bench.example",
            clinic=clinic,
            role=User.Role.CLINIC_ADMIN if n == 0 else User.Role.STAFF,
            # Set here: the devices go in by bulk_create or COPY, which send no signals.
            twofa_enrolled=is_enrolled_index(n),
        )

    @transaction.atomic
    def delete_bench_data(self) -> None:
        bench = Clinic.objects.filter(name__startswith="Bench Clinic")
        User.objects.filter(clinic__in=bench).delete()
        bench.delete()


# --- PostgreSQL: COPY, indexes after ------------------------------------------------


def _column_values(instance) -> dict[str, object]:
    """Every column of an unsaved instance that an INSERT writes, as the database stores it
    (defaults applied; generated columns such as User.search_text are the database's)."""
    return {
        field.column: field.get_db_prep_save(getattr(instance, field.attname), connection)
        for field in instance._meta.concrete_fields
        if not field.primary_key and not field.generated
    }


def _secondary_indexes(table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of the table's indexes that back no constraint."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = %s
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """,
            [table],
        )
        return cursor.fetchall()


def copy_clinics(todo, staff: int, password_hash: str) -> tuple[int, int]:
    """COPY the users and devices of the listed (clinic, number) pairs, in one transaction."""
    import secrets

    Device = totp_device_model()
    user_table, device_table = User._meta.db_table, Device._meta.db_table
    template_user = _column_values(User(password=password_hash, clinic=todo[0][0]))
    template_device = _column_values(Device(user_id=0, name="Authenticator app", confirmed=True))
    key_pool = [_column_values(Device(user_id=0))["encrypted_key"] for _ in range(1_000)]
    user_columns, device_columns = ["id", *template_user], ["id", *template_device]
    users = devices = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'LOCK TABLE "{user_table}", "{device_table}" IN EXCLUSIVE MODE')
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        # Check the foreign keys at the end of each COPY: CREATE INDEX refuses pending trigger events.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        indexes = _secondary_indexes(user_table)
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{user_table}"')
        next_user = cursor.fetchone()[0] + 1
        cursor.execute(f'SELECT COALESCE(MAX(id), 0) FROM "{device_table}"')
        next_device = cursor.fetchone()[0] + 1
        enrolled_ids = []
        copy_users = f'COPY "{user_table}" ({", ".join(chr(34) + c + chr(34) for c in user_columns)}) FROM STDIN'
        with cursor.cursor.copy(copy_users) as copy:
            for clinic, clinic_no in todo:
                for n in range(staff):
                    row = dict(template_user)
                    user = Command.new_user(clinic, clinic_no, n, password_hash)
                    row.update(
                        username=user.username, first_name=user.first_name, last_name=user.last_name,
                        email=user.email, clinic_id=clinic.pk, role=user.role, session_nonce=secrets.token_hex(16),
                        twofa_enrolled=user.twofa_enrolled,
                    )
                    copy.write_row([next_user, *(row[c] for c in template_user)])
                    if is_enrolled_index(n):
                        enrolled_ids.append(next_user)
                    next_user += 1
                    users += 1
        copy_devices = f'COPY "{device_table}" ({", ".join(chr(34) + c + chr(34) for c in device_columns)}) FROM STDIN'
        with cursor.cursor.copy(copy_devices) as copy:
            for i, user_id in enumerate(enrolled_ids):
                row = dict(template_device, user_id=user_id, encrypted_key=key_pool[i % len(key_pool)])
                copy.write_row([next_device, *(row[c] for c in template_device)])
                next_device += 1
                devices += 1
        for _, definition in indexes:
            cursor.execute(definition)
        for table in (user_table, device_table):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT MAX(id) FROM \"{table}\"))"
            )
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{user_table}"')
        cursor.execute(f'ANALYZE "{device_table}"')
    return users, devices
