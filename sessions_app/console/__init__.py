"""The specialist console: queue, session pages and their live websocket."""
