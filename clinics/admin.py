from django.contrib import admin

from clinic_auth.twofactor import flows

from .models import Clinic


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ("name", "mandatory_2fa", "created_at")
    search_fields = ("name",)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "mandatory_2fa" in form.changed_data:
            flows.record_mandatory_change(clinic=obj, actor=request.user, request=request)
