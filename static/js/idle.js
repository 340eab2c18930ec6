// The warning before the idle logout (WCAG 2.2.1 Timing Adjustable). Without this file the
// server's idle logout simply happens, as before.
(() => {
  const dialog = document.getElementById("idle-warning");
  if (!dialog || typeof dialog.showModal !== "function") return;

  const keepAliveUrl = dialog.dataset.keepAliveUrl;
  const warnBefore = Number(dialog.dataset.warnBefore) * 1000;
  const logoutForm = dialog.querySelector("[data-idle-logout]");
  const csrfToken = logoutForm.querySelector("input[name=csrfmiddlewaretoken]").value;
  const countdowns = dialog.querySelectorAll("[data-countdown]");
  const stay = dialog.querySelector("[data-stay]");
  const acknowledge = dialog.querySelector("[data-acknowledge]");
  let expiresAt = Date.now() + Number(dialog.dataset.expiresIn) * 1000;
  // "idle" (staying active moves it) or "absolute" (the sign-in's own limit: nothing moves it).
  let endsBy = dialog.dataset.endsBy;
  let acknowledged = false;
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
    expiresAt = Date.now() + data.expires_in * 1000;
    endsBy = data.ends_by;
  };

  // The words and buttons for the limit that comes first.
  const showFor = (limit) => {
    dialog.querySelectorAll("[data-when]").forEach((part) => { part.hidden = part.dataset.when !== limit; });
    dialog.setAttribute("aria-labelledby", limit === "absolute" ? "idle-warning-title-absolute" : "idle-warning-title");
    dialog.setAttribute("aria-describedby", limit === "absolute" ? "idle-warning-text-absolute" : "idle-warning-text");
  };

  const close = () => {
    if (dialog.open) dialog.close();
    if (returnFocusTo && document.contains(returnFocusTo)) returnFocusTo.focus();
  };

  // The session has ended: log out saying which limit ended it, and come back here after signing in.
  const endedHere = () => {
    const field = (name, value) => {
      const input = document.createElement("input");
      input.type = "hidden";
      input.name = name;
      input.value = value;
      logoutForm.appendChild(input);
    };
    field("reason", endsBy);
    field("next", window.location.pathname + window.location.search);
    logoutForm.submit();
  };

  const stayed = async () => {
    try {
      await ask("POST");
      lastActivityPing = Date.now();
      close();
    } catch (error) {
      endedHere();  // the session is already gone: show the login page
    }
  };

  const acknowledgeEnd = () => {
    acknowledged = true;  // the countdown still ends the session; the warning does not come back
    close();
  };

  stay.addEventListener("click", stayed);
  acknowledge.addEventListener("click", acknowledgeEnd);
  dialog.addEventListener("cancel", (event) => {  // Escape means "stay" (or "OK"), never "sign me out"
    event.preventDefault();
    if (endsBy === "absolute") acknowledgeEnd();
    else stayed();
  });

  // Typing in a form is activity, even before it is sent: tell the server, at most once a minute.
  document.addEventListener("input", (event) => {
    if (dialog.contains(event.target) || Date.now() - lastActivityPing < 60_000) return;
    lastActivityPing = Date.now();
    ask("POST").catch(() => {});
  });

  const tick = async () => {
    const left = expiresAt - Date.now();
    if (left <= warnBefore && !dialog.open && !checking && !acknowledged) {
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
      showFor(endsBy);
      dialog.showModal();
      (endsBy === "absolute" ? acknowledge : stay).focus();
    }
    countdowns.forEach((countdown) => { countdown.textContent = format(expiresAt - Date.now()); });
    if (expiresAt - Date.now() <= 0) {
      window.clearInterval(timer);
      endedHere();
    }
  };
  const timer = window.setInterval(tick, 1000);
})();
