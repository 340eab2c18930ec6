from django.urls import path

from . import views

urlpatterns = [
    path("clinics/<int:clinic_pk>/settings/", views.ClinicSettingsView.as_view(), name="clinic_settings"),
    path("clinics/<int:clinic_pk>/edit/", views.ClinicEditView.as_view(), name="clinic_edit"),
    path("clinics/<int:clinic_pk>/audit-log/", views.AuditLogView.as_view(), name="clinic_audit_log"),
    path("clinics/<int:clinic_pk>/audit-log.csv", views.AuditLogCSVView.as_view(), name="clinic_audit_log_csv"),
]
