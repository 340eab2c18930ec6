from django.contrib import admin

from clinic_auth.twofactor import services
from clinic_auth.http import client_ip

from .forms import ClinicAdminForm
from .models import Clinic


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    form = ClinicAdminForm
    list_display = ("name", "mandatory_2fa", "mandatory_from", "time_zone", "created_at")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        mandatory, mandatory_from, time_zone = obj.mandatory_2fa, obj.mandatory_from, obj.time_zone
        if change:
            # The flag, its date and the zone are changed only through the service, which also re-checks every member's session.
            obj.mandatory_2fa, obj.mandatory_from, obj.time_zone = Clinic.objects.values_list(
                "mandatory_2fa", "mandatory_from", "time_zone"
            ).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        if change:
            services.clinic_set_mandatory(
                clinic=obj,
                mandatory=mandatory,
                mandatory_from=mandatory_from,
                time_zone=time_zone,
                actor=request.user,
                ip_address=client_ip(request),
            )
