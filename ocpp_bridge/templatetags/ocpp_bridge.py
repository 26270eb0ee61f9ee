"""Station-page partials of the bridge.

``{% load ocpp_bridge %}`` then ``{% ocpp_commands charge_point %}`` for the
command buttons and ``{% ocpp_frame_log charge_point %}`` for the frame log
(loaded with htmx from /stations/<identity>/frames/).
"""

from django import template

from ocpp_bridge.views import commands_context

register = template.Library()


@register.inclusion_tag("ocpp_bridge/partials/commands.html", takes_context=True)
def ocpp_commands(context, charge_point):
    request = context.get("request")
    user = getattr(request, "user", None)
    return {
        **commands_context(charge_point, user),
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("ocpp_bridge/partials/frame_log_loader.html")
def ocpp_frame_log(charge_point):
    return {"charge_point": charge_point}


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "") if hasattr(mapping, "get") else ""
