-- W3C tracestate travels with traceparent (vendor trace state, e.g. sampling).
ALTER TABLE outbox ADD COLUMN tracestate text;
