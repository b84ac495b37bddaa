// At a phone's width the page itself must not scroll sideways; code
// blocks and equations may, inside their own boxes. Returns the overflow in
// px and the elements that stick out.
(() => {
  const width = document.documentElement.clientWidth;
  const overflow = document.documentElement.scrollWidth - width;
  if (overflow <= 1) return {overflow: 0, culprits: []};
  const scrolls = n => {
    for (let e = n; e && e !== document.body; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') return true;
    }
    return false;
  };
  const culprits = [...document.querySelectorAll('body *')]
    .filter(n => n.getBoundingClientRect().right > width + 1
                 && !scrolls(n.parentElement) && !scrolls(n))
    .slice(0, 5)
    .map(n => `<${n.tagName.toLowerCase()} class="${n.className}"> `
              + n.textContent.trim().replace(/\s+/g, ' ').slice(0, 60));
  return {overflow, culprits};
})
