import type { Page } from 'playwright-core';

export interface ContrastPair {
  text: string;
  selector: string;
  fg: string;
  bg: string;
  ratio: number;
}

/**
 * Every visible element with its own text on the page: its colour against the background it
 * is drawn on (the first ancestor with an opaque background colour), as the WCAG 2 contrast
 * ratio. Computed by the browser from the real stylesheet in the current colour scheme.
 */
export async function contrastPairs(page: Page): Promise<ContrastPair[]> {
  // Run in the page as plain JavaScript (this package is compiled without the DOM's types).
  return page.evaluate<ContrastPair[]>(`(() => {
    const rgb = (c) => (c.match(/[\\d.]+/g) ?? ['0', '0', '0', '0']).map(Number);
    const lum = (c) => {
      const f = (v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
    };
    const bgOf = (e) => {
      for (let x = e; x; x = x.parentElement) {
        const c = rgb(getComputedStyle(x).backgroundColor);
        if (c.length < 4 || c[3] >= 0.99) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    const out = [];
    for (const e of Array.from(document.querySelectorAll('body *'))) {
      const own = Array.from(e.childNodes).some((n) => n.nodeType === 3 && (n.textContent ?? '').trim() !== '');
      if (!own || e.offsetParent === null || ['SCRIPT', 'STYLE', 'OPTION'].includes(e.tagName)) continue;
      const cs = getComputedStyle(e);
      if (cs.visibility === 'hidden' || Number(cs.opacity) < 0.99) continue;
      const fg = rgb(cs.color).slice(0, 3);
      const bg = bgOf(e);
      const a = lum(fg);
      const b = lum(bg);
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      out.push({ text: (e.textContent ?? '').trim().slice(0, 30), selector: \`\${e.tagName.toLowerCase()}.\${e.className}\`, fg: fg.join(','), bg: bg.join(','), ratio: Math.round(ratio * 100) / 100 });
    }
    return out;
  })()`);
}
