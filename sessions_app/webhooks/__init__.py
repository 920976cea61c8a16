"""Webhooks: endpoints a project registers, and the worker that delivers its events to them.

- `addresses`: which URLs may receive (http(s) only; the SSRF stance).
- `services`: create, delete, and deliver what is due (one endpoint, one event at a time).
- `signing`: Standard Webhooks headers, signed with the `standardwebhooks` library.
- `worker`: the `deliver_webhooks` loop (LISTEN/NOTIFY, a fallback poll, threads).
- `selectors`, `views`, `admin`: what operators and supervisors see.
"""
