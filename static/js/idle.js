// The warning before the idle logout (WCAG 2.2.1 Timing Adjustable). Without this file the
// server's idle logout simply happens, as before.
(() => {
  const dialog = document.getElementById("idle-warning");
  if (!dialog || typeof dialog.showModal !== "function") return;

  const keepAliveUrl = dialog.dataset.keepAliveUrl;
  const warnBefore = Number(dialog.dataset.warnBefore) * 1000;
  const logoutForm = dialog.querySelector("[data-idle-logout]");
  const csrfToken = logoutForm.querySelector("input[name=csrfmiddlewaretoken]").value;
  const countdown = dialog.querySelector("[data-countdown]");
  const stay = dialog.querySelector("[data-stay]");
  let expiresAt = Date.now() + Number(dialog.dataset.expiresIn) * 1000;
  let lastActivityPing = Date.now();
  let checking = false;
  let returnFocusTo = null;

  const format = (ms) => {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  };

  const ask = async (method) => {
    const response = await fetch(keepAliveUrl, {
      method,
      credentials: "same-origin",
      headers: { Accept: "application/json", ...(method === "POST" ? { "X-CSRFToken": csrfToken } : {}) },
    });
    if (!response.ok) throw new Error(`keep-alive ${response.status}`);
    const data = await response.json();
    expiresAt = Date.now() + data.idle_expires_in * 1000;
  };

  const close = () => {
    if (dialog.open) dialog.close();
    if (returnFocusTo && document.contains(returnFocusTo)) returnFocusTo.focus();
  };

  const stayed = async () => {
    try {
      await ask("POST");
      lastActivityPing = Date.now();
      close();
    } catch (error) {
      logoutForm.submit();  // the session is already gone: show the login page
    }
  };

  stay.addEventListener("click", stayed);
  dialog.addEventListener("cancel", (event) => {  // Escape means "stay", never "sign me out"
    event.preventDefault();
    stayed();
  });

  // Typing in a form is activity, even before it is sent: tell the server, at most once a minute.
  document.addEventListener("input", (event) => {
    if (dialog.contains(event.target) || Date.now() - lastActivityPing < 60_000) return;
    lastActivityPing = Date.now();
    ask("POST").catch(() => {});
  });

  const tick = async () => {
    const left = expiresAt - Date.now();
    if (left <= warnBefore && !dialog.open && !checking) {
      // Another tab may have kept the session alive: ask before warning or signing out.
      checking = true;
      try {
        await ask("GET");
      } catch (error) {
        // The server no longer knows this session; the countdown below ends it here too.
      }
      checking = false;
      if (expiresAt - Date.now() > warnBefore) return;
      returnFocusTo = document.activeElement;
      dialog.showModal();
      stay.focus();
    }
    countdown.textContent = format(expiresAt - Date.now());
    if (expiresAt - Date.now() <= 0) {
      window.clearInterval(timer);
      logoutForm.submit();
    }
  };
  const timer = window.setInterval(tick, 1000);
})();
