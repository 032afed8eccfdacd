"""The names a journey expression may read, by root.

`journeys validate` checks every path against these tables (with "did you mean"); the
engine's scope provides every one of them.
"""

from __future__ import annotations

from collections.abc import Mapping

EVENT_COMMON: tuple[str, ...] = ("event_id", "customer_id", "type", "ts")

EVENT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "visit": (
        "venue_id", "amount", "currency", "items", "item_names", "categories",
        "party_size", "channel", "source", "daypart",
    ),
    "rating": ("stars", "text", "venue_id"),
    "voucher_redeemed": ("voucher_id", "venue_id"),
    "booking": ("venue_id", "party_size", "booked_for", "source"),
    "profile": (
        "name", "email", "phone", "telegram_chat_id", "birthday", "timezone", "language",
        "consents",
    ),
    "message": ("status", "command_id", "channel", "journey"),
    "points": ("kind", "amount"),
    "presence": ("venue_id", "zone", "source", "daypart"),
}
"""Fields of each event type, besides `EVENT_COMMON`."""

EVENT_TYPES: tuple[str, ...] = tuple(EVENT_FIELDS)

MESSAGE_STATUSES: tuple[str, ...] = (
    "delivered", "opened", "clicked", "bounced", "unsubscribed", "failed")
"""`status` of a message event."""
POINTS_KINDS: tuple[str, ...] = ("earned", "spent", "expired")
"""`kind` of a points event."""
PRESENCE_ZONES: tuple[str, ...] = (
    "entrance", "shop_entrance", "toilets", "event_space", "food_court", "parking",
    "cinema", "play_area", "lounge", "info_desk", "terrace", "other")
"""`zone` of a presence event: where in the venue the customer was seen (an event types
file may add more)."""
PRESENCE_SOURCES: tuple[str, ...] = ("wallet_pass", "wifi", "beacon", "sensor", "app", "qr")
"""`source` of a presence event: what saw the customer."""
WEEKDAYS: tuple[str, ...] = (
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""`customer.usual_weekday`, in ISO order."""

CUSTOMER_FIELDS: tuple[str, ...] = (
    "customer_id", "name", "first_name", "email", "phone", "birthday", "timezone",
    "language", "consents", "first_visit_at", "last_visit_at", "visit_count",
    "visits_30d", "visits_90d", "visits_365d", "days_since_last_visit",
    "days_since_first_visit", "avg_gap_days", "total_spend", "avg_spend",
    "last_visit_amount", "last_venue_id", "last_party_size", "last_channel",
    "last_rating", "last_rating_at", "rating_count", "avg_rating", "favourite_item",
    "favourite_category", "last_items", "usual_daypart", "usual_weekday", "points",
    "points_earned", "points_spent", "tags", "vouchers_redeemed", "messages_opened",
    "messages_clicked", "unsubscribed", "distinct_items", "spend_365d",
    # presence: seen at a venue or zone with no purchase
    "presence_count", "first_presence_at", "last_presence_at", "last_presence_venue_id",
    "last_zone", "presences_30d", "presences_90d", "days_since_last_presence",
    "days_since_first_presence",
    # scores as of the start of the day or of a later visit that day, computed when read
    "p_alive", "churn_risk", "expected_visits", "expected_spend", "clv",
    # population percentiles (0 to 100) from streaming histograms
    "spend_percentile", "check_percentile", "frequency_percentile",
    # recency, frequency and monetary scores, 1 to 5 each, and the three as "545"
    "r_score", "f_score", "m_score", "rfm",
    # from the segments file
    "segment", "segments", "check_tier", "loyalty_tier",
    # items often bought with the customer's favourites, from the chain's baskets
    "recommended_items", "recommended_item",
)

VENUE_FIELDS: tuple[str, ...] = (
    "venue_id", "avg_amount", "visit_count", "median_amount", "amount_p75",
)

OFFER_FIELDS: tuple[str, ...] = (
    "issued", "redeemed", "expired", "code", "issued_at", "expires_at", "redeemed_at",
    "description",
)
"""Fields of `offer.<offer_id>`."""

ENROLLMENT_FIELDS: tuple[str, ...] = ("entered_at", "days_in", "step", "holdout", "variant",
                                      "variants")
"""Fields of `journey.*`: the current enrollment."""

ROOTS: tuple[str, ...] = ("event", "customer", "venue", "offer", "journey")

_NUMBERS = {
    "customer": (
        "visit_count", "visits_30d", "visits_90d", "visits_365d", "days_since_last_visit",
        "days_since_first_visit", "avg_gap_days", "total_spend", "avg_spend",
        "last_visit_amount", "last_party_size", "last_rating", "rating_count", "avg_rating",
        "points", "points_earned", "points_spent", "vouchers_redeemed", "messages_opened",
        "messages_clicked", "distinct_items", "spend_365d", "p_alive", "churn_risk",
        "expected_visits", "expected_spend", "clv", "spend_percentile", "check_percentile",
        "frequency_percentile", "r_score", "f_score", "m_score", "first_visit_at",
        "last_visit_at", "last_rating_at", "presence_count", "first_presence_at",
        "last_presence_at", "presences_30d", "presences_90d", "days_since_last_presence",
        "days_since_first_presence"),
    "event": ("amount", "party_size", "stars", "ts"),
    "venue": ("avg_amount", "visit_count", "median_amount", "amount_p75"),
    "journey": ("entered_at", "days_in"),
}
_TEXTS = {
    "customer": (
        "customer_id", "name", "first_name", "email", "phone", "birthday", "timezone",
        "language", "last_venue_id", "last_channel", "favourite_item", "favourite_category",
        "usual_daypart", "usual_weekday", "rfm", "segment", "check_tier", "loyalty_tier",
        "last_presence_venue_id", "last_zone", "recommended_item"),
    "event": ("event_id", "customer_id", "type", "venue_id", "currency", "channel",
              "source", "daypart", "voucher_id", "status", "kind", "command_id", "journey",
              "text", "booked_for", "zone"),
    "venue": ("venue_id",),
    "journey": ("step", "variant"),
}
FIELD_KINDS: Mapping[str, str] = {
    **{f"{root}.{name}": "number" for root, names in _NUMBERS.items() for name in names},
    **{f"{root}.{name}": "text" for root, names in _TEXTS.items() for name in names},
}
"""Whether a field holds a number or text (fields not listed may hold either, or lists)."""
