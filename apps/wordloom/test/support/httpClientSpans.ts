/**
 * Preloaded into a real process (NODE_OPTIONS=--import) by test/exporter-parity.test.ts: an
 * HTTP client instrumentation in miniature. Every outgoing request (node's http diagnostics
 * channel) starts and ends a CLIENT span with the global tracer, in the context the request is
 * made in, as @opentelemetry/instrumentation-http would; the SDK makes it non-recording where
 * tracing is suppressed. On SIGUSR2 the process makes one traced request to
 * LOOMTRACE_TEST_CONTROL_URL (a `control` span and its GET), to show the instrumentation works.
 */
import dc from 'node:diagnostics_channel';
import http, { type ClientRequest } from 'node:http';
import { SpanKind, trace } from '@opentelemetry/api';

const tracer = () => trace.getTracer('test-http-client');

dc.subscribe('http.client.request.start', (m) => {
  const req = (m as { request: ClientRequest }).request;
  tracer().startSpan(req.method, { kind: SpanKind.CLIENT, attributes: { 'url.path': req.path } }).end();
});

const control = process.env['LOOMTRACE_TEST_CONTROL_URL'];
if (control) {
  process.on('SIGUSR2', () => {
    tracer().startActiveSpan('control', (span) => {
      http
        .get(control, (res) => {
          res.resume();
          res.on('end', () => span.end());
        })
        .on('error', () => span.end());
    });
  });
}
