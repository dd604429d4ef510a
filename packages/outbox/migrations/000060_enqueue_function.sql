-- Enqueue from any language: `select loomtrace.enqueue(...)` inside the caller's transaction
-- inserts one event, exactly as the TypeScript `enqueue` does (same columns; the queue trigger
-- of 000040 puts it in `outbox_queue` and wakes the workers at commit). Rolling the
-- transaction back removes the event with the change.
--
-- The caller passes the W3C trace context of its own span (traceparent, tracestate): the
-- worker's `process <projection>` span becomes its child, in the same trace. A malformed
-- traceparent is not an error: it is stored as null (a notice says so) and the worker starts a
-- new trace. Bad attributes or a bad projection name are errors (22023), as in TypeScript.
create function loomtrace.enqueue(
  projection        text,
  event_type        text,
  aggregate_type    text,
  aggregate_id      text,
  aggregate_version bigint,
  payload           jsonb,
  traceparent       text  default null,
  tracestate        text  default null,
  request_id        text  default null,
  attributes        jsonb default null
) returns bigint
language plpgsql volatile
as $$
declare
  tp   text := enqueue.traceparent;
  ts   text := enqueue.tracestate;
  k    text;
  v    jsonb;
  n    integer := 0;
  new_id bigint;
begin
  if enqueue.projection is null or enqueue.projection !~ '^[a-z][a-z0-9_.-]{0,62}$' then
    raise exception 'loomtrace.enqueue: projection must match [a-z][a-z0-9_.-]* (at most 63 characters), got %',
      coalesce(quote_literal(left(enqueue.projection, 70)), 'null') using errcode = '22023';
  end if;
  if enqueue.event_type is null or enqueue.aggregate_type is null or enqueue.aggregate_id is null or enqueue.aggregate_version is null then
    raise exception 'loomtrace.enqueue: event_type, aggregate_type, aggregate_id and aggregate_version are required'
      using errcode = '22023';
  end if;
  if enqueue.payload is null or jsonb_typeof(enqueue.payload) <> 'object' then
    raise exception 'loomtrace.enqueue: payload must be a JSON object, got %', coalesce(jsonb_typeof(enqueue.payload), 'null')
      using errcode = '22023';
  end if;

  -- Attributes go on every span of the event: the rules of the TypeScript checkedAttributes.
  if enqueue.attributes is not null and jsonb_typeof(enqueue.attributes) <> 'null' then
    if jsonb_typeof(enqueue.attributes) <> 'object' then
      raise exception 'loomtrace.enqueue: attributes must be an object of string, number or boolean values, got %',
        jsonb_typeof(enqueue.attributes) using errcode = '22023';
    end if;
    for k, v in select e.key, e.value from jsonb_each(enqueue.attributes) as e loop
      n := n + 1;
      if n > 16 then
        raise exception 'loomtrace.enqueue: at most 16 attributes, got %', (select count(*) from jsonb_object_keys(enqueue.attributes))
          using errcode = '22023';
      end if;
      if k !~ '^[A-Za-z0-9_./-]{1,128}$' then
        raise exception 'loomtrace.enqueue: attribute key % must be 1 to 128 letters, digits, _ . - /', quote_literal(left(k, 40))
          using errcode = '22023';
      end if;
      if k = 'loomtrace.request.id' or k like 'messaging.%'
         or (k like 'loomtrace.%' and split_part(substr(k, 11), '.', 1) = any (array[
           'projection', 'event', 'aggregate', 'attempt', 'lease', 'queue', 'retry', 'ack', 'outcome', 'reclaimed',
           'previous', 'batch', 'write', 'replayed', 'next', 'link', 'db', 'max', 'sampled', 'worker', 'request'])) then
        raise exception 'loomtrace.enqueue: attribute key % is the outbox''s own', k using errcode = '22023';
      end if;
      case jsonb_typeof(v)
        when 'string' then
          if char_length(v #>> '{}') > 256 then
            raise exception 'loomtrace.enqueue: attribute % is longer than 256 characters', k using errcode = '22023';
          end if;
        when 'number' then
          -- JSON numbers have no infinity, but one beyond a double's range becomes one in the worker.
          if abs((v #>> '{}')::numeric) > 1.7976931348623157e308 then
            raise exception 'loomtrace.enqueue: attribute % must be a finite number', k using errcode = '22023';
          end if;
        when 'boolean' then
          null;
        else
          raise exception 'loomtrace.enqueue: attribute % must be a string, number or boolean, got %', k, jsonb_typeof(v)
            using errcode = '22023';
      end case;
    end loop;
  end if;

  -- A traceparent the worker could not continue is absent: a new trace starts there.
  if tp is not null and (tp !~ '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$'
                         or substr(tp, 4, 32) = repeat('0', 32) or substr(tp, 37, 16) = repeat('0', 16)) then
    raise notice 'loomtrace.enqueue: malformed traceparent % ignored; the event starts a new trace', quote_literal(left(tp, 80));
    tp := null;
  end if;
  -- tracestate belongs to its traceparent; an empty one, or one over the W3C's 512 characters
  -- (which OpenTelemetry drops when it reads it), is not kept.
  if tp is null or ts = '' or char_length(ts) > 512 then
    ts := null;
  end if;

  insert into loomtrace.outbox
    (projection, event_type, aggregate_type, aggregate_id, aggregate_version,
     request_id, attributes, traceparent, tracestate, payload)
  values (enqueue.projection, enqueue.event_type, enqueue.aggregate_type, enqueue.aggregate_id, enqueue.aggregate_version,
          enqueue.request_id, case when jsonb_typeof(enqueue.attributes) = 'null' then null else enqueue.attributes end,
          tp, ts, enqueue.payload)
  returning id into new_id;
  return new_id;
end $$;

comment on function loomtrace.enqueue(text, text, text, text, bigint, jsonb, text, text, text, jsonb) is
  'Adds an outbox event in the caller''s transaction; stores the caller''s W3C trace context (a malformed traceparent is stored as null). Returns the event id.';
