from django.forms.renderers import DjangoTemplates, Jinja2
from django.template import TemplateDoesNotExist


class FormRenderer(Jinja2):
    """Form fields through Django's own Jinja2 copies of its widget templates (the same HTML, in a
    third of the CPU: settings.FORM_RENDERER); a widget whose template exists only for Django's
    template language, as the Django admin's do, through Django's own renderer."""

    fallback = DjangoTemplates()

    def get_template(self, template_name):
        try:
            return super().get_template(template_name)
        except TemplateDoesNotExist:
            return self.fallback.get_template(template_name)
