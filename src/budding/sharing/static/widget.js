// Budding share widget: put
//   <script src="https://BUDDING/w/widget.js" data-program="SLUG" data-token="TOKEN" async></script>
// where the widget should appear. TOKEN comes from your backend:
//   POST /api/v1/members/{external_id}/widget-token  (Authorization: Bearer <API key>)
// Optional: data-locale (the widget's language), data-title (the iframe's title), data-width.
(function () {
  "use strict";
  // The iframe's title until the widget says its own: /w/widget.js fills in this line in
  // the visitor's language (Accept-Language).
  const defaultTitle = "Invite friends";
  const script = document.currentScript;
  if (!script) return;
  const origin = new URL(script.src, location.href).origin;
  const program = script.dataset.program;
  const token = script.dataset.token;
  if (!program || !token) {
    console.error("Budding widget: data-program and data-token are required");
    return;
  }
  let src = origin + "/w/" + encodeURIComponent(program) + "?token=" + encodeURIComponent(token);
  if (script.dataset.locale) src += "&locale=" + encodeURIComponent(script.dataset.locale);
  const frame = document.createElement("iframe");
  frame.src = src;
  // The title a screen reader announces: data-title when the page gives one, else the
  // widget's own once it has loaded (in the language it shows), meanwhile defaultTitle.
  const fixedTitle = script.dataset.title;
  frame.title = fixedTitle || defaultTitle;
  frame.loading = "lazy";
  frame.referrerPolicy = "no-referrer";
  frame.setAttribute("allow", "clipboard-write; web-share");
  frame.style.cssText = "width:100%;max-width:" + (script.dataset.width || "420px") +
    ";height:360px;border:0;display:block";
  script.parentNode.insertBefore(frame, script.nextSibling);
  window.addEventListener("message", (e) => {
    if (e.origin !== origin || e.source !== frame.contentWindow) return;
    const data = e.data || {};
    if (data.type === "budding:height" && Number.isFinite(data.height)) {
      frame.style.height = Math.min(Math.max(data.height, 120), 2000) + "px";
    }
    if (data.type === "budding:title" && !fixedTitle && typeof data.title === "string") {
      const title = data.title.trim().slice(0, 200);
      if (title) frame.title = title;
    }
  });
})();
