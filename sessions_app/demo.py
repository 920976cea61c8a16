"""Demo data for `make run`: a project, its people, and conversations that moved across channels."""

from __future__ import annotations

from typing import Any

DEMO_PROJECT_NAME = "Demo: Acme Support"
# username, role, teams
DEMO_USERS = [
    ("ana", "agent", ["billing"]),
    ("ben", "agent", ["billing", "technical"]),
    ("sam", "supervisor", []),
    ("admin", "admin", []),
]
DEMO_TEAMS = ["billing", "technical"]
# Canned responses: typed as /shortcut in the console's reply box.
DEMO_CANNED = [
    ("hello", "Greeting", "Hi {{customer_name}}, thanks for waiting. I'm looking at this now."),
    (
        "refund",
        "Refund on its way",
        "Hi {{customer_name}}, your refund has been issued; it reaches your account in "
        "3-5 business days.",
    ),
    ("bye", "Closing", "Is there anything else I can help with, {{customer_name}}?"),
]


def _turn(n: int, channel: str, role: str, author: str, device: str, text: str) -> dict[str, Any]:
    return {
        "id": f"turn-{n}",
        "text": text,
        "metadata": {"channel": channel, "role": role, "author": author, "device": device},
    }


# Each conversation: name, session metadata, then steps: ("turns", [...]), ("push", {...}),
# ("claim", ...), ("note", ...), ("hand_back", ...), ("resolve", ...).
DEMO_CONVERSATIONS: list[dict[str, Any]] = [
    # Dana's earlier conversation: the customer panel of conv-123 lists it.
    {
        "name": "conv-098",
        "metadata": {"customer_id": "cust-4411", "customer_name": "Dana Whitfield"},
        "steps": [
            (
                "turns",
                [
                    _turn(
                        1,
                        "chat",
                        "customer",
                        "Dana Whitfield",
                        "desktop",
                        "My February invoice shows a duplicate charge for the subscription.",
                    ),
                ],
            ),
            (
                "push",
                {
                    "to": "team",
                    "target": "billing",
                    "from_agent": "chat-bot",
                    "from_channel": "chat",
                    "reason": "Duplicate charge on the February invoice",
                },
            ),
            ("claim", {"user": "ana"}),
            (
                "note",
                {
                    "user": "ana",
                    "text": "Second duplicate charge for this customer; billing bug BILL-311.",
                },
            ),
            (
                "turns",
                [
                    _turn(
                        2,
                        "chat",
                        "agent",
                        "ana",
                        "console",
                        "I've refunded the duplicate charge; you'll see it in 3-5 days.",
                    ),
                ],
            ),
            ("resolve", {"user": "ana", "note": "Duplicate refunded"}),
        ],
    },
    {
        "name": "conv-123",
        "metadata": {"customer_id": "cust-4411", "customer_name": "Dana Whitfield"},
        "steps": [
            (
                "turns",
                [
                    _turn(
                        1,
                        "voice",
                        "customer",
                        "Dana Whitfield",
                        "phone",
                        "Hi, I was charged twice for my $49.99 subscription this month.",
                    ),
                    _turn(
                        2,
                        "voice",
                        "bot",
                        "voice-bot",
                        "ivr",
                        "I can see two charges of $49.99 on March 3rd. I've opened a refund "
                        "for the duplicate; it takes 3-5 business days.",
                    ),
                ],
            ),
            (
                "push",
                {
                    "to": "bot",
                    "target": "chat-bot",
                    "from_agent": "voice-bot",
                    "from_channel": "voice",
                    "reason": "call ended, customer moved to chat",
                },
            ),
            (
                "turns",
                [
                    _turn(
                        3,
                        "chat",
                        "customer",
                        "Dana Whitfield",
                        "desktop",
                        "It's been a week and the refund still hasn't shown up on my card.",
                    ),
                    _turn(
                        4,
                        "chat",
                        "bot",
                        "chat-bot",
                        "web",
                        "The refund was issued on March 4th. Banks can take up to 10 days "
                        "to post it.",
                    ),
                    _turn(
                        5,
                        "chat",
                        "customer",
                        "Dana Whitfield",
                        "desktop",
                        "That's not acceptable, I want to talk to a person about this refund.",
                    ),
                ],
            ),
            (
                "push",
                {
                    "to": "team",
                    "target": "billing",
                    "from_agent": "chat-bot",
                    "from_channel": "chat",
                    "reason": "Customer upset: duplicate charge refund not received",
                },
            ),
        ],
    },
    {
        "name": "ticket-8812",
        "metadata": {"customer_id": "cust-2093", "customer_name": "Luis Ortega"},
        "steps": [
            (
                "turns",
                [
                    _turn(
                        1,
                        "email",
                        "customer",
                        "Luis Ortega",
                        "laptop",
                        "My router keeps dropping the connection every evening around 8pm.",
                    ),
                    _turn(
                        2,
                        "email",
                        "bot",
                        "email-triage",
                        "mail",
                        "Thanks Luis. Please restart the router and tell us the firmware "
                        "version shown on the status page.",
                    ),
                    _turn(
                        3,
                        "sms",
                        "customer",
                        "Luis Ortega",
                        "phone",
                        "Restarted it. Firmware is 2.1.4 and it still drops at night.",
                    ),
                ],
            ),
            (
                "push",
                {
                    "to": "team",
                    "target": "technical",
                    "from_agent": "email-triage",
                    "from_channel": "sms",
                    "reason": "Connection drops persist after restart on firmware 2.1.4",
                },
            ),
        ],
    },
    {
        "name": "cust-7730-upgrade",
        "metadata": {"customer_id": "cust-7730", "customer_name": "Priya Natarajan"},
        "steps": [
            (
                "turns",
                [
                    _turn(
                        1,
                        "chat",
                        "customer",
                        "Priya Natarajan",
                        "phone",
                        "Can I upgrade to the family plan and keep my current number?",
                    ),
                    _turn(
                        2,
                        "chat",
                        "bot",
                        "chat-bot",
                        "web",
                        "Yes, numbers carry over. The family plan is $79 a month for four lines.",
                    ),
                    _turn(
                        3,
                        "chat",
                        "customer",
                        "Priya Natarajan",
                        "phone",
                        "Great, and will my contract end date change?",
                    ),
                ],
            ),
            (
                "push",
                {
                    "to": "humans",
                    "from_agent": "chat-bot",
                    "from_channel": "chat",
                    "reason": "Contract question the bot cannot answer",
                },
            ),
        ],
    },
    {
        "name": "conv-561",
        "metadata": {"customer_id": "cust-1187", "customer_name": "Tom Becker"},
        "steps": [
            (
                "turns",
                [
                    _turn(
                        1,
                        "voice",
                        "customer",
                        "Tom Becker",
                        "phone",
                        "I need to update the billing address on my account.",
                    ),
                    _turn(
                        2,
                        "voice",
                        "bot",
                        "voice-bot",
                        "ivr",
                        "Done: your billing address is now 14 Harbour Street, Leith.",
                    ),
                    _turn(3, "voice", "customer", "Tom Becker", "phone", "Perfect, thank you."),
                ],
            ),
            (
                "push",
                {
                    "to": "bot",
                    "target": "email-bot",
                    "from_agent": "voice-bot",
                    "from_channel": "voice",
                    "reason": "send written confirmation",
                },
            ),
            (
                "turns",
                [
                    _turn(
                        4,
                        "email",
                        "bot",
                        "email-bot",
                        "mail",
                        "Confirmation: your billing address was changed to 14 Harbour Street.",
                    ),
                ],
            ),
        ],
    },
    {
        "name": "ticket-9034",
        "metadata": {"customer_id": "cust-5520", "customer_name": "Mei Chen"},
        "steps": [
            (
                "turns",
                [
                    _turn(
                        1,
                        "chat",
                        "customer",
                        "Mei Chen",
                        "desktop",
                        "I was billed for a premium channel pack I never ordered.",
                    ),
                    _turn(
                        2,
                        "chat",
                        "bot",
                        "chat-bot",
                        "web",
                        "I can see the pack was added on the 2nd. I can't remove charges myself.",
                    ),
                ],
            ),
            (
                "push",
                {
                    "to": "team",
                    "target": "billing",
                    "from_agent": "chat-bot",
                    "from_channel": "chat",
                    "reason": "Disputed add-on charge",
                },
            ),
            ("claim", {"user": "ana"}),
            (
                "turns",
                [
                    _turn(
                        3,
                        "chat",
                        "agent",
                        "ana",
                        "console",
                        "I've removed the premium pack and credited $14.99 to your account.",
                    ),
                    _turn(
                        4, "chat", "customer", "Mei Chen", "desktop", "Thank you, that's sorted."
                    ),
                ],
            ),
            ("resolve", {"user": "ana", "note": "Add-on removed and credited"}),
        ],
    },
    {
        "name": "conv-771",
        "metadata": {"customer_id": "cust-3302", "customer_name": "Omar Haddad"},
        "steps": [
            (
                "turns",
                [
                    _turn(
                        1,
                        "voice",
                        "customer",
                        "Omar Haddad",
                        "phone",
                        "My new SIM card says 'no service' since this morning.",
                    ),
                    _turn(
                        2,
                        "voice",
                        "bot",
                        "voice-bot",
                        "ivr",
                        "I've re-sent the activation. Let me pass you to a specialist.",
                    ),
                ],
            ),
            (
                "push",
                {
                    "to": "team",
                    "target": "technical",
                    "from_agent": "voice-bot",
                    "from_channel": "voice",
                    "reason": "SIM not activating after re-send",
                },
            ),
            ("claim", {"user": "ben"}),
            (
                "turns",
                [
                    _turn(
                        3,
                        "sms",
                        "agent",
                        "ben",
                        "console",
                        "The SIM was provisioned on the wrong network profile; fixed now. "
                        "Please restart your phone.",
                    ),
                ],
            ),
            (
                "hand_back",
                {
                    "user": "ben",
                    "bot": "sms-bot",
                    "note": "Fixed profile; bot to confirm service after restart",
                },
            ),
            (
                "turns",
                [
                    _turn(
                        4,
                        "sms",
                        "bot",
                        "sms-bot",
                        "sms-gateway",
                        "Hi Omar, did your phone get service after the restart?",
                    ),
                ],
            ),
        ],
    },
]
