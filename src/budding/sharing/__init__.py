"""The share kit ("fission material"), the share funnel with its measured launch cost,
and the virality metrics (K-factor, cycle time, generations, projection)."""

# The funnel's event types, known to every program (budding.members.events): a click or a
# conversion logged through /api/v1/events needs no registration first.
EVENT_TYPES: dict[str, str] = {
    "share_opened": "A member opened the share kit (portal, widget or app).",
    "channel_chosen": "A member picked a share channel in the share kit.",
    "share_sent": "A share left the kit: handed to an app, copied, or mailed by Budding.",
    "link_click": "Someone clicked a member's referral link (member: the referrer).",
    "conversion": "A referred member's qualifying conversion (member: the referrer).",
}
