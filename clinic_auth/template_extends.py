"""Django's `{% extends %}`, except that the blocks of the template at the top of the chain are found once.

On every render Django's ExtendsNode walks the whole node tree of the topmost parent (base.html: the
navigation, its conditions and loops) to collect its `{% block %}` nodes, though a compiled template
never changes. That walk was 7 % of the instructions of a whole request to Home, 3 % of My Profile
(callgrind: 4.81M -> 4.49M and 10.79M -> 10.50M; issue 16).
Here the blocks are kept on the compiled parent itself, so a template that is compiled again (the
cached loader's reset when a file changes under DEBUG) is walked again, and one that is never cached
is walked as often as Django walks it.

settings.TEMPLATES makes this module a builtin library, so every template's `{% extends %}` is this one.
"""

from django import template
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockContext, BlockNode
from django.template.loader_tags import ExtendsNode as DjangoExtendsNode
from django.template.loader_tags import do_extends as django_do_extends

register = template.Library()

_ROOT_BLOCKS = "_clinic_auth_root_blocks"
_NOT_ROOT = object()


def _root_blocks(parent):
    """The {name: BlockNode} of `parent` if it extends nothing (it is the top of the chain), else None."""
    blocks = parent.__dict__.get(_ROOT_BLOCKS)
    if blocks is None:
        blocks = _NOT_ROOT
        first = next((node for node in parent.nodelist if not isinstance(node, template.base.TextNode)), None)
        if first is not None and not isinstance(first, DjangoExtendsNode):
            blocks = {node.name: node for node in parent.nodelist.get_nodes_by_type(BlockNode)}
        parent.__dict__[_ROOT_BLOCKS] = blocks
    return None if blocks is _NOT_ROOT else blocks


class ExtendsNode(DjangoExtendsNode):
    def render(self, context):
        parent = self.get_parent(context)
        block_context = context.render_context.get(BLOCK_CONTEXT_KEY)
        if block_context is None:
            block_context = context.render_context[BLOCK_CONTEXT_KEY] = BlockContext()
        block_context.add_blocks(self.blocks)
        root_blocks = _root_blocks(parent)
        if root_blocks is not None:
            block_context.add_blocks(root_blocks)
        with context.render_context.push_state(parent, isolated_context=False):
            return parent._render(context)


@register.tag("extends")
def do_extends(parser, token):
    node = django_do_extends(parser, token)
    return ExtendsNode(node.nodelist, node.parent_name)
