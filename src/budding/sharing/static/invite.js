// The share kit on the portal's "Invite friends" page and in the embeddable widget.
// Every share action is one tap; each records its funnel steps (channel_chosen, share_sent)
// through the page's beacon so the launch cost of every channel is measured.
(function () {
  "use strict";
  const root = document.querySelector("[data-share-kit]");
  if (!root) return;
  const shareId = root.dataset.shareId;
  const stepsUrl = root.dataset.stepsUrl;
  const token = root.dataset.token || "";
  const csrf = document.body.dataset.csrf || "";
  const status = root.querySelector("[data-share-status]");

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return (Date.now().toString(36) + Math.random().toString(36).slice(2)).slice(0, 32);
  }

  function record(steps) {
    const body = { steps: steps.map((s) => Object.assign({ id: newId(), share_id: shareId }, s)) };
    const headers = { "Content-Type": "application/json" };
    if (token) body.token = token;
    else if (csrf) headers["X-CSRF-Token"] = csrf;
    // keepalive: the request survives the page handing over to another app.
    return fetch(stepsUrl, {
      method: "POST", headers, body: JSON.stringify(body), keepalive: true, credentials: "same-origin",
    }).catch(() => undefined);
  }
  const chosen = (channel) => record([{ type: "channel_chosen", channel }]);
  const sent = (channel) => record([{ type: "share_sent", channel }]);
  const both = (channel) => record([{ type: "channel_chosen", channel }, { type: "share_sent", channel }]);

  function say(text) {
    if (!status || !text) return;
    status.textContent = text;
    status.hidden = false;
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { status.hidden = true; }, 4000);
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
      area.remove();
      return ok;
    }
  }

  function flashButton(el) {
    el.classList.add("copied");
    el.setAttribute("data-copied", "1");
    setTimeout(() => el.classList.remove("copied"), 2500);
  }

  let kakao = null;
  function loadKakao() {
    if (kakao) return kakao;
    const cfgEl = document.getElementById("kakao-config");
    const cfg = cfgEl ? JSON.parse(cfgEl.textContent) : null;
    kakao = new Promise((resolve, reject) => {
      if (!cfg) { reject(new Error("no Kakao settings")); return; }
      const s = document.createElement("script");
      s.src = cfg.sdk_url;
      s.async = true;
      s.onload = () => {
        if (!window.Kakao.isInitialized()) window.Kakao.init(cfg.app_key);
        resolve({ sdk: window.Kakao, template: cfg.template });
      };
      s.onerror = () => reject(new Error("the Kakao SDK did not load"));
      document.head.appendChild(s);
    });
    return kakao;
  }

  // Web Share API where there is one (phones); else copy the message for pasting.
  async function nativeShare(el, channel) {
    chosen(channel);
    if (navigator.share) {
      try {
        await navigator.share({ text: el.dataset.text, url: el.dataset.link });
        sent(channel);
      } catch (_) { /* cancelled: chosen but not sent */ }
      return;
    }
    if (await copy(el.dataset.text)) {
      sent(channel);
      flashButton(el);
      say(root.dataset.msgPaste);
    }
  }

  root.addEventListener("click", async (e) => {
    const el = e.target.closest("[data-share]");
    if (!el || !root.contains(el)) return;
    const channel = el.dataset.channel || "";
    switch (el.dataset.share) {
      case "copy":
        e.preventDefault();
        if (await copy(el.dataset.text)) {
          if (channel) both(channel);
          flashButton(el);
          say(root.dataset.msgCopied);
        }
        break;
      case "url": // a share URL: the app opens with the message prefilled
        both(channel);
        break;
      case "native":
        e.preventDefault();
        await nativeShare(el, channel);
        break;
      case "sdk":
        e.preventDefault();
        chosen(channel);
        try {
          const k = await loadKakao();
          k.sdk.Share.sendDefault(k.template);
          sent(channel);
        } catch (_) {
          await nativeShare(el, channel);
        }
        break;
      case "qr": { // WeChat: friends scan the code
        e.preventDefault();
        chosen(channel);
        const dialog = document.getElementById(el.dataset.dialog);
        if (dialog && dialog.showModal) dialog.showModal();
        else if (dialog) dialog.setAttribute("open", "");
        break;
      }
      case "download": // saving the QR image to send it
        if (channel) sent(channel);
        break;
      case "open": { // a form on this page (tell a friend)
        e.preventDefault();
        const target = document.getElementById(el.dataset.target);
        if (target) {
          if (!target.open) { target.open = true; }
          target.scrollIntoView({ behavior: "smooth", block: "start" });
          const input = target.querySelector("input[type=email]");
          if (input) input.focus({ preventScroll: true });
        }
        break;
      }
      case "close": {
        e.preventDefault();
        const dialog = el.closest("dialog");
        if (dialog) dialog.close();
        break;
      }
      default:
        break;
    }
  });

  // Opening the tell-a-friend form is choosing that channel; the server records the send.
  root.querySelectorAll("details[data-channel]").forEach((d) => {
    d.addEventListener("toggle", () => { if (d.open) chosen(d.dataset.channel); });
  });

  // The system share sheet only where the browser has one.
  if (navigator.share) root.querySelectorAll("[data-needs-web-share]").forEach((el) => { el.hidden = false; });

  // In the widget's iframe: tell the host page how tall the content is, and what to call
  // the frame (its title, in the language the widget shows).
  if (window.parent !== window) {
    const post = () => window.parent.postMessage(
      { type: "budding:height", height: document.documentElement.scrollHeight }, "*");
    if (root.dataset.frameTitle) {
      window.parent.postMessage({ type: "budding:title", title: root.dataset.frameTitle }, "*");
    }
    window.addEventListener("load", post);
    if (window.ResizeObserver) new ResizeObserver(post).observe(document.body);
  }
})();
