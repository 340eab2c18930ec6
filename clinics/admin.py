from django.contrib import admin

from clinic_auth.twofactor import services
from clinic_auth.twofactor.events import client_ip

from .models import Clinic


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "mandatory_2fa", "created_at")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        mandatory = obj.mandatory_2fa
        if change:
            # The flag is changed only through the service, which also re-checks every member's session.
            obj.mandatory_2fa = Clinic.objects.values_list("mandatory_2fa", flat=True).get(pk=obj.pk)
        super().save_model(request, obj, form, change)
        if change:
            services.clinic_set_mandatory(clinic=obj, mandatory=mandatory, actor=request.user, ip_address=client_ip(request))
