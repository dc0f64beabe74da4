// The checks `mixlib.chapters.browser` runs in every page of the book, after MathJax has typeset it.
// Each returns a list of problems, in words a reader of the test's output understands.

// the content column: the article of sphinx-book-theme, the <main> or <body> of any other page
function contentColumn() {
  return document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
}

function excerpt(element) {
  return element.textContent.trim().replace(/\s+/g, " ").slice(0, 70);
}

// formulas a reader would see as LaTeX source: MathJax missing or failed, or delimiters that a Markdown
// renderer ate, which leaves the commands in the text: (\sqrt{1-\lambda})
function rawLatex() {
  const problems = [];
  const walker = document.createTreeWalker(contentColumn(), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (parent.closest("pre, code, script, style, mjx-container, .highlight")) continue;
    if (parent.offsetParent === null) continue;  // hidden: the reader does not see it
    const text = node.textContent;
    for (const mark of ["\\(", "\\[", "$$", "\\begin{"]) {
      if (text.includes(mark)) problems.push(`raw LaTeX ${mark}: "${text.trim().slice(0, 70)}"`);
    }
    const command = text.match(/\\[a-zA-Z]{2,}/);
    if (command) problems.push(`raw LaTeX command ${command[0]}: "${text.trim().slice(0, 70)}"`);
  }
  for (const math of document.querySelectorAll(".math")) {
    if (!math.querySelector("mjx-container")) problems.push(`formula not typeset: "${excerpt(math)}"`);
  }
  return problems;
}

// tables, images and outputs wider than the text column (at the desktop width)
function tooWide(tolerance) {
  const column = contentColumn();
  const style = getComputedStyle(column);
  const box = column.getBoundingClientRect();
  const left = box.left + parseFloat(style.paddingLeft);
  const right = box.right - parseFloat(style.paddingRight);
  const problems = [];
  const shown = column.querySelectorAll("table, img, figure, .cell_output > .output");
  for (const element of shown) {
    const rect = element.getBoundingClientRect();
    if (rect.width === 0) continue;
    if (rect.left < left - tolerance || rect.right > right + tolerance) {
      const width = Math.round(rect.width), room = Math.round(right - left);
      const what = element.tagName.toLowerCase();
      problems.push(`${what} is ${width} px wide, the column ${room} px: "${excerpt(element)}"`);
    }
  }
  return problems;
}

// the nearest box around `element` that scrolls sideways, or null
function sidewaysScroller(element) {
  for (let box = element.parentElement; box && box !== document.body; box = box.parentElement) {
    const overflow = getComputedStyle(box).overflowX;
    if (overflow === "auto" || overflow === "scroll") return box;
  }
  return null;
}

// at a phone width a table may be wider than the column if a box around it scrolls sideways and holds
// all of it, header included; the page itself must not scroll sideways
function cutOff(tolerance) {
  const problems = [];
  const page = document.documentElement.scrollWidth;
  if (page > window.innerWidth + tolerance) {
    problems.push(`the page is ${page} px wide in a ${window.innerWidth} px window`);
  }
  for (const table of contentColumn().querySelectorAll("table")) {
    const rect = table.getBoundingClientRect();
    const scroller = sidewaysScroller(table);
    const frame = scroller ? scroller.getBoundingClientRect() : {left: 0, right: window.innerWidth};
    if (rect.left >= frame.left - tolerance && rect.right <= frame.right + tolerance) continue;
    if (!scroller || scroller.scrollWidth + tolerance < rect.width) {
      problems.push(`table cut off at ${window.innerWidth} px, no sideways scrolling: "${excerpt(table)}"`);
    }
  }
  return problems;
}

function brokenImages() {
  return [...document.images]
    .filter((image) => !image.complete || image.naturalWidth === 0)
    .map((image) => `image does not load: ${image.getAttribute("src")}`);
}

function networkResources() {
  return performance.getEntriesByType("resource")
    .map((entry) => entry.name)
    .filter((name) => /^(https?|wss?):/.test(name))
    .map((name) => `fetched from a network: ${name}`);
}

function pageFacts() {
  return {
    ids: [...document.querySelectorAll("[id]")].map((element) => element.id),
    links: [...document.querySelectorAll("a[href]")].map((link) => link.href),
  };
}
