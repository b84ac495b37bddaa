// Runs in each page of the site after MathJax has finished: everything the
// checks of tests/test_site.py need, in one call.
(() => {
  const out = {};
  const mathNodes = [...document.querySelectorAll('span.math, div.math')];
  out.math = mathNodes.length;
  out.unrendered = mathNodes.filter(n => !n.querySelector('mjx-container')).map(n => n.textContent.slice(0, 80));
  out.mathErrors = [...document.querySelectorAll('mjx-merror, [data-mjx-error]')].map(n => n.textContent.slice(0, 80));
  const main = document.querySelector('main') || document.body;
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .cell_output, .output').forEach(n => n.remove());
  out.text = clone.textContent;
  out.links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  out.images = [...document.querySelectorAll('img')].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}));
  out.outputs = [...document.querySelectorAll('.cell_output pre, .output pre')].map(n => n.textContent);
  // Layout at this width: anything wider than its box, and stderr blocks.
  const snippet = n => n.textContent.trim().replace(/\s+/g, ' ').slice(0, 70);
  const column = (document.querySelector('article.bd-article') || main).getBoundingClientRect();
  out.wideMath = [...document.querySelectorAll('mjx-container[display="true"]')].filter(n => {
    const box = n.getBoundingClientRect(), inner = n.querySelector('mjx-math');
    const wide = inner && inner.getBoundingClientRect().width > box.width + 1;
    return wide || box.right > column.right + 1;
  }).map(n => {
    const items = window.MathJax && MathJax.startup.document.getMathItemsWithin(n);
    return items && items.length ? items[0].math.trim().replace(/\s+/g, ' ').slice(0, 70) : snippet(n);
  });
  out.wideCode = [...document.querySelectorAll('div.cell_input pre, div.cell_output pre, div.highlight pre')]
    .filter(n => n.scrollWidth > n.clientWidth + 1).map(snippet);
  out.stderr = [...document.querySelectorAll('.output.stderr, div.stderr')].map(snippet);
  out.bookNotes = [...document.querySelectorAll('dl.py.function, dl.py.class')].map(dl => ({
    id: (dl.querySelector('dt') || {}).id || '',
    linked: [...dl.querySelectorAll(':scope > dd > p')].some(p => p.textContent.startsWith('In the book:')
              && p.querySelector('a[href*="chapters/"]'))}));
  return out;
})
