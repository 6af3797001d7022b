// The colmax search page: picks an index, searches with explanations, and shows, per hit, the
// document tokens that query tokens matched best. Text goes into the page only as text nodes.
"use strict";

const $ = (id) => document.getElementById(id);
const SPECIAL = /^\[(CLS|SEP|MASK|PAD|unused\d+)\]$|^\[[QD]\]\s?$/;
let apiKey = sessionStorage.getItem("colmax-api-key");

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (apiKey) headers.Authorization = "Bearer " + apiKey;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) {
    $("key-form").hidden = false;
    $("api-key").focus();
  }
  if (!response.ok) {
    const message = data.error ? data.error.message : response.statusText;
    throw new Error(message);
  }
  return data;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

async function loadIndexes() {
  const indexes = await api("GET", "indexes");
  const picker = $("index");
  picker.replaceChildren();
  for (const [name, facts] of Object.entries(indexes)) {
    const option = element("option", "", `${name} (${facts.documents.toLocaleString()} docs)`);
    option.value = name;
    picker.append(option);
  }
  const params = new URLSearchParams(location.search);
  if (params.get("index")) picker.value = params.get("index");
  if (params.get("mode")) $("mode").value = params.get("mode");
  if (params.get("q")) {
    $("query").value = params.get("q");
    search();
  } else {
    status(`${Object.keys(indexes).length} index(es) served. Type a query.`);
  }
}

// The stored text split into plain runs and <mark> runs, one per matched token span. Offsets
// count Unicode code points (Python's), hence Array.from rather than string indices.
function highlightedText(text, explanation) {
  const container = element("div", "text");
  const chars = Array.from(text || "");
  const spans = new Map(); // "start,end" -> {start, end, queryTokens: [i...], best}
  const ex = explanation || {};
  (ex.doc_spans || []).forEach((span, i) => {
    if (!span) return;
    const key = span.join(",");
    const entry = spans.get(key) || { start: span[0], end: span[1], queryTokens: [], best: -Infinity };
    entry.queryTokens.push(i);
    entry.best = Math.max(entry.best, ex.similarity[i]);
    spans.set(key, entry);
  });
  const ordered = [...spans.values()].sort((a, b) => a.start - b.start);
  const marks = new Map(); // query token index -> its <mark>
  let at = 0;
  for (const span of ordered) {
    if (span.start < at) continue; // tokens never overlap; be safe anyway
    container.append(document.createTextNode(chars.slice(at, span.start).join("")));
    const mark = element("mark", "", chars.slice(span.start, span.end).join(""));
    mark.style.setProperty("--alpha", strength(span.best).toFixed(2));
    mark.title = span.queryTokens
      .map((i) => `${(ex.query_tokens || [])[i] || "q" + i} ${ex.similarity[i].toFixed(3)}`)
      .join(", ");
    for (const i of span.queryTokens) marks.set(i, mark);
    container.append(mark);
    at = span.end;
  }
  container.append(document.createTextNode(chars.slice(at).join("")));
  return { container, marks };
}

// Highlight opacity for a similarity: weak matches (below ~0.3) barely show.
function strength(similarity) {
  return Math.max(0.08, Math.min(1, (similarity - 0.2) / 0.75));
}

function showTooltip(anchor, text) {
  const tip = $("tooltip");
  tip.textContent = text;
  tip.hidden = false;
  const box = anchor.getBoundingClientRect();
  tip.style.left = `${box.left + window.scrollX}px`;
  tip.style.top = `${box.bottom + window.scrollY + 4}px`;
}

function hideTooltip() {
  $("tooltip").hidden = true;
}

// One chip per query token; hovering one lights its best match in the text.
function whyRow(explanation, marks) {
  const row = element("div", "why");
  row.append(element("span", "label", "query tokens:"));
  const ex = explanation;
  (ex.query_tokens || ex.similarity.map((_, i) => `q${i}`)).forEach((token, i) => {
    const chip = element("span", "qtok" + (SPECIAL.test(token) ? " special" : ""), token);
    const sim = ex.similarity[i];
    const match = ex.doc_tokens ? ex.doc_tokens[i] : `document token ${ex.doc_token[i]}`;
    chip.style.setProperty("--alpha", (strength(sim) * 0.7).toFixed(2));
    chip.dataset.match = match;
    chip.dataset.similarity = sim.toFixed(4);
    const describe = `${token} → ${match}   similarity ${sim.toFixed(4)}`;
    chip.addEventListener("mouseenter", () => {
      chip.classList.add("active");
      const mark = marks.get(i);
      if (mark) mark.classList.add("active");
      showTooltip(chip, describe);
    });
    chip.addEventListener("mouseleave", () => {
      chip.classList.remove("active");
      const mark = marks.get(i);
      if (mark) mark.classList.remove("active");
      hideTooltip();
    });
    row.append(chip);
  });
  return row;
}

// What a hit's score is: the fusion of both sides when the search computed both, else one side's.
function scoreKind(hit) {
  if (hit.semantic_score != null && hit.keyword_score != null) return "fused score (hybrid)";
  return hit.keyword_score != null ? "BM25 score (keyword)" : "MaxSim score (semantic)";
}

function renderHit(hit, rank) {
  const item = element("li", "hit");
  item.dataset.id = hit.id;
  const head = element("div", "hit-head");
  head.append(element("span", "rank", `#${rank}`));
  const score = element("span", "score", hit.score.toFixed(4));
  score.title = scoreKind(hit);
  head.append(score);
  head.append(element("span", "doc-id", hit.id));
  const meta = element("span", "meta");
  for (const [key, value] of Object.entries(hit.metadata || {})) {
    meta.append(element("span", "", `${key}: ${typeof value === "string" ? value : JSON.stringify(value)}`));
  }
  head.append(meta);
  // each side's score where the search computed it (both for hybrid: the fused one came from them)
  const parts = [["semantic", hit.semantic_score], ["keyword", hit.keyword_score]].filter(([, v]) => v != null);
  if (parts.length) head.append(element("span", "parts", parts.map(([n, v]) => `${n} ${v.toFixed(3)}`).join(" · ")));
  item.append(head);
  const { container, marks } = highlightedText(hit.text, hit.explanation);
  item.append(container);
  if (hit.explanation) item.append(whyRow(hit.explanation, marks));
  const terms = (hit.explanation || {}).keyword_terms;
  if (terms && terms.length) item.append(element("div", "terms", `keyword terms matched: ${terms.join(", ")}`));
  return item;
}

async function search(event) {
  if (event) event.preventDefault();
  const query = $("query").value.trim();
  const index = $("index").value;
  if (!query || !index) return;
  const k = Number($("k").value);
  const mode = $("mode").value; // "" keeps the index's default
  const body = { query, k, explain: true };
  if (mode) body.mode = mode;
  status("Searching…");
  const started = performance.now();
  try {
    const data = await api("POST", `indexes/${encodeURIComponent(index)}/search`, body);
    const took = performance.now() - started;
    $("results").replaceChildren(...data.hits.map((hit, i) => renderHit(hit, i + 1)));
    $("legend").hidden = data.hits.length === 0;
    const how = mode ? `${mode} search` : "search";
    status(`${data.hits.length} result(s) in ${took.toFixed(0)} ms, ${how} of ${index} (commit ${data.generation}).`);
    const modeParam = mode ? `&mode=${encodeURIComponent(mode)}` : "";
    history.replaceState(null, "", `?index=${encodeURIComponent(index)}&q=${encodeURIComponent(query)}${modeParam}`);
  } catch (error) {
    $("results").replaceChildren();
    status(error.message, true);
  }
}

$("search-form").addEventListener("submit", search);
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  apiKey = $("api-key").value;
  sessionStorage.setItem("colmax-api-key", apiKey);
  $("key-form").hidden = true;
  loadIndexes().catch((error) => status(error.message, true));
});
loadIndexes().catch((error) => status(error.message, true));
