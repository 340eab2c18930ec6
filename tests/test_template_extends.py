"""clinic_auth.template_extends: {% extends %} renders what Django's own tag renders, the top template's blocks found once."""

import pytest
from django.template import Context, Engine, Template, TemplateSyntaxError
from django.template.loader import get_template

from clinic_auth import template_extends

TEMPLATES = {
    "base.html": "<title>{% block title %}Base{% endblock %}</title>"
                 "{% if show %}<nav>{% block nav %}nav{% endblock %}</nav>{% endif %}"
                 "<main>{% block content %}base content{% block inner %}base inner{% endblock %}{% endblock %}</main>"
                 "{% for item in items %}{% block loop %}[{{ item }}]{% endblock %}{% endfor %}",
    "middle.html": "{% extends 'base.html' %}{% block title %}Middle | {{ block.super }}{% endblock %}"
                   "{% block content %}middle before {{ block.super }} middle after{% endblock %}",
    "leaf.html": "{% extends 'middle.html' %}{% block inner %}leaf inner, then {{ block.super }}{% endblock %}"
                 "{% block nav %}{{ block.super }} + leaf nav{% endblock %}",
    "direct.html": "  {% extends 'base.html' %}{% block loop %}<{{ item }}>{% endblock %}",
    "with_include.html": "{% extends 'base.html' %}{% block content %}{% include 'included.html' %}{% endblock %}",
    "included.html": "{% extends 'middle.html' %}{% block title %}never shown{% endblock %}"
                     "{% block inner %}included inner{% endblock %}",
    "dynamic.html": "{% extends parent %}{% block title %}Dynamic{% endblock %}",
    "spaced_middle.html": "\n  {% extends 'base.html' %}{% block content %}spaced {{ block.super }}{% endblock %}",
    "spaced_leaf.html": "{% extends 'spaced_middle.html' %}{% block inner %}spaced leaf{% endblock %}",
}


def engines():
    loaders = [("django.template.loaders.locmem.Loader", TEMPLATES)]
    ours = Engine(builtins=["clinic_auth.template_extends"], loaders=[("django.template.loaders.cached.Loader", loaders)])
    djangos = Engine(loaders=[("django.template.loaders.cached.Loader", loaders)])
    return ours, djangos


@pytest.mark.parametrize("name", ["base.html", "middle.html", "leaf.html", "direct.html", "with_include.html", "spaced_leaf.html"])
@pytest.mark.parametrize("show", [True, False])
def test_renders_what_djangos_tag_renders_twice_over(name, show):
    ours, djangos = engines()
    context = {"show": show, "items": [1, 2]}
    expected = djangos.get_template(name).render(Context(context))
    assert "leaf inner, then base inner" in djangos.get_template("leaf.html").render(Context(context))  # the case is real
    # Twice: the second render uses the blocks kept from the first.
    assert ours.get_template(name).render(Context(context)) == expected
    assert ours.get_template(name).render(Context(context)) == expected


def test_parent_given_as_a_template_object_or_a_name():
    ours, djangos = engines()
    for parent in ("middle.html", "base.html"):
        expected = djangos.get_template("dynamic.html").render(Context({"parent": parent, "show": True}))
        assert ours.get_template("dynamic.html").render(Context({"parent": parent, "show": True})) == expected
    standalone = Template("{% block title %}Standalone{% endblock %}<p>{% block content %}{% endblock %}</p>", engine=ours)
    rendered = ours.get_template("dynamic.html").render(Context({"parent": standalone}))
    assert rendered == "Dynamic<p></p>"


def test_the_top_templates_blocks_are_found_once_per_compiled_template():
    ours, _ = engines()
    leaf = ours.get_template("leaf.html")
    leaf.render(Context({"show": True}))
    base = ours.get_template("base.html")
    assert set(base.__dict__[template_extends._ROOT_BLOCKS]) == {"title", "nav", "content", "inner", "loop"}
    assert ours.get_template("middle.html").__dict__[template_extends._ROOT_BLOCKS] is template_extends._NOT_ROOT

    def walked(nodetype):
        raise AssertionError("the blocks were looked for again")

    base.nodelist.get_nodes_by_type = walked
    assert "leaf inner, then base inner" in leaf.render(Context({"show": True}))


def test_a_second_extends_is_still_refused():
    ours, _ = engines()
    with pytest.raises(TemplateSyntaxError, match="cannot appear more than once"):
        Template("{% extends 'base.html' %}{% extends 'middle.html' %}", engine=ours)
    with pytest.raises(TemplateSyntaxError, match="must be the first tag"):
        Template("{% if x %}{% endif %}{% extends 'base.html' %}", engine=ours)


def test_the_apps_templates_use_this_extends():
    compiled = get_template("users/profile.html").template
    assert any(isinstance(node, template_extends.ExtendsNode) for node in compiled.nodelist)
