// The whole trace at a glance on a canvas (one pass, cheap for 10,000 spans): one pixel row per
// waterfall row, scaled down to the canvas height. Colours come from the page's CSS variables,
// so the dark theme applies.
export function drawMinimap(canvas, rows, t0, total) {
  const w = canvas.clientWidth || 800;
  const h = canvas.height;
  canvas.width = w;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const css = getComputedStyle(document.documentElement);
  const color = (v, d) => css.getPropertyValue(v).trim() || d;
  const fill = { span: color('--bar', '#3557d4'), queue: color('--queue', '#9aa3b8'), error: color('--err', '#c62f3d'), retried: color('--warn', '#b7791f'), syn: color('--muted', '#6b7385') };
  ctx.clearRect(0, 0, w, h);
  const n = rows.length;
  const rowH = Math.max(0.5, h / Math.max(1, n));
  for (let i = 0; i < n; i++) {
    const r = rows[i];
    if (r.startNs === undefined) continue;
    const x = (Number(r.startNs - t0) / total) * w;
    const bw = Math.max(1, (Number(r.endNs - r.startNs) / total) * w);
    const cls = r.cls || 'syn';
    ctx.fillStyle = cls.includes('error') ? fill.error : cls.includes('retried') ? fill.retried : cls.includes('queue') ? fill.queue : cls === 'syn' ? fill.syn : fill.span;
    ctx.fillRect(x, Math.floor(i * rowH), bw, Math.max(1, rowH));
  }
}
