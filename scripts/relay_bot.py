"""A bot that owns the customer's channel (SMS here) and keeps it through a human handoff.

It opens a session, adds the customer's turns, escalates to humans, then follows
the event stream: it relays every reply a specialist writes in the console to
the customer, and takes the conversation back when the specialist hands it back.

    make run                                   # in another terminal
    .venv/bin/python scripts/relay_bot.py      # then, in the console, as ana:
                                               # claim, reply, hand back to the bot

Credentials come from MOSS_PROJECT_ID / MOSS_PROJECT_KEY (and MOSS_BASE_URL), or else
from the demo key file that `make run` writes (see scripts/handoff_example.py).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's moss_client, whatever is installed

from handoff_example import credentials  # noqa: E402

from moss_client import DocumentInfo, Event, MossClient, MossError  # noqa: E402
from moss_client.client import Session  # noqa: E402

BOT = "sms-bot"
CUSTOMER_TURNS = [
    ("customer", "Hi, you charged me a $35 overdraft fee but I had money in my account."),
    ("bot", "Sorry about that! I can see the fee from Tuesday. Let me check what happened."),
    ("customer", "I want it reversed, and I'd like to talk to a person please."),
]


def say(line: str) -> None:
    print(line, flush=True)


def turn(doc_id: str, role: str, text: str) -> DocumentInfo:
    author = BOT if role == "bot" else "customer"
    return DocumentInfo(
        id=doc_id, text=text, metadata={"role": role, "channel": "sms", "author": author}
    )


def is_specialist_reply(event: Event) -> bool:
    """A turn a human wrote in the console: what the customer must receive."""
    return (
        event.type == "turn.added"
        and event.actor.kind == "user"
        and event.data.get("role") == "agent"
    )


async def take_back(session: Session, event: Event) -> None:
    """The specialist handed back: the bot answers on its channel again."""
    note = event.data.get("note") or "(no note)"
    say(f"hand-back from {event.actor.name}: note {note!r}")
    text = "Thanks for waiting! I'm back with you here. Is there anything else I can do?"
    await session.add_docs([turn(f"bot-{event.cursor}", "bot", text)])
    say(f"bot (taking the conversation back): {text}")


async def relay(name: str, *, follow: bool) -> None:
    project_id, project_key, base_url = credentials()
    async with MossClient(project_id, project_key, base_url=base_url, agent=BOT) as client:
        # Taken first, so nothing that happens after the escalation is missed.
        start = await client.latest_event_cursor()
        session = await client.session(
            name, metadata={"customer_id": "cust-relay"}, channel="sms", device="sms-gateway"
        )
        say(f"bot: opened session {session.name} ({session.doc_count} turns so far)")
        for index, (role, text) in enumerate(CUSTOMER_TURNS, start=session.doc_count + 1):
            await session.add_docs([turn(f"sms-{index}", role, text)])
            say(f"{role}: {text}")
        pushed = await session.push_index(
            to="humans",
            reason="customer asks for a person to reverse an overdraft fee",
            from_agent=BOT,
            from_channel="sms",
        )
        say(f"bot: escalated to humans (handoff version {pushed.version})")
        say(
            f"waiting for a specialist: sign in at {base_url.rstrip('/')}/console/ "
            "(demo: ana, password printed by `make run`, kept in .moss/demo-logins.json), "
            "claim it, reply, hand back to the bot"
        )
        stream = client.events(after=start, session=name)
        async for event in stream:
            if event.type == "session.claimed":
                say(f"claimed by {event.data.get('holder') or event.actor.name}")
            elif is_specialist_reply(event):
                say(f"relay to customer: {event.data['text']}")
            elif event.type == "session.transferred":
                to = event.data.get("to", {})
                say(f"transferred by {event.actor.name} to {to.get('kind')} {to.get('target')}")
            elif event.type == "session.handed_back":
                await take_back(session, event)
                if not follow:
                    break
            elif event.type == "session.resolved":
                say(f"resolved by {event.actor.name}: {event.data.get('reason') or ''}")
                if not follow:
                    break
        say(f"bot: done; a later run could resume the stream from cursor {stream.cursor}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--session", help="session name (default: a fresh relay-<random>)")
    parser.add_argument("--follow", action="store_true", help="keep following after the hand-back")
    parser.add_argument(
        "--timeout", type=float, default=1800, help="give up after this many seconds"
    )
    args = parser.parse_args()
    name = args.session or f"relay-{secrets.token_hex(4)}"
    try:
        asyncio.run(asyncio.wait_for(relay(name, follow=args.follow), args.timeout))
    except TimeoutError:
        say(f"bot: no hand-back within {args.timeout:g}s; stopping")
        return 2
    except MossError as exc:
        print(f"relay bot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
