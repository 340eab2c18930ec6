// Progressive enhancement only: every page works without this file.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-dropdown]").forEach((dropdown) => {
    const toggle = dropdown.querySelector(".dropdown-toggle");
    const menu = dropdown.querySelector(".dropdown-menu");
    const setOpen = (open) => {
      toggle.setAttribute("aria-expanded", String(open));
      menu.hidden = !open;
    };
    setOpen(false);
    toggle.addEventListener("click", () => setOpen(toggle.getAttribute("aria-expanded") !== "true"));
    dropdown.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        setOpen(false);
        toggle.focus();
      }
    });
    document.addEventListener("click", (event) => {
      if (!dropdown.contains(event.target)) setOpen(false);
    });
  });

  document.querySelectorAll("[data-copy-target]").forEach((button) => {
    const source = document.getElementById(button.dataset.copyTarget);
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(source.value);
      button.textContent = "Copied";
    });
  });

  // The set-up key, without the spaces that group it for reading (apps accept either).
  document.querySelectorAll("[data-copy-text]").forEach((button) => {
    if (!navigator.clipboard) return;
    const status = button.parentElement.querySelector(".copy-status");
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(button.dataset.copyText);
      if (status) status.textContent = button.dataset.copiedLabel;
    });
  });

  // Leaving a page whose content is shown only once: ask first.
  document.querySelectorAll("[data-confirm]").forEach((wrapper) => {
    wrapper.querySelector("a").addEventListener("click", (event) => {
      if (!window.confirm(wrapper.dataset.confirm)) event.preventDefault();
    });
  });

  // Edit Clinic: ticking Mandatory 2FA shows how many members Save will send to set-up (no extra click).
  document.querySelectorAll("[data-confirm-for]").forEach((notice) => {
    const box = document.getElementById(notice.dataset.confirmFor);
    if (!box) return;
    const update = () => {
      notice.hidden = !box.checked;
    };
    box.addEventListener("change", update);
    update();
  });

  // Edit Clinic: unticking Mandatory 2FA says what Save will do.
  document.querySelectorAll("[data-unticked-for]").forEach((notice) => {
    const box = document.getElementById(notice.dataset.untickedFor);
    if (!box) return;
    const update = () => {
      notice.hidden = box.checked;
    };
    box.addEventListener("change", update);
    update();
  });

  // Edit Clinic: the date box is for "A date" under Mandatory 2FA only; otherwise it is off.
  const mandatoryBox = document.getElementById("id_mandatory_2fa");
  const dateBox = document.getElementById("id_mandatory_from");
  if (mandatoryBox && dateBox) {
    const radios = [...document.querySelectorAll("input[name=require_from]")];
    const update = () => {
      const chosen = radios.find((radio) => radio.checked);
      dateBox.disabled = !mandatoryBox.checked || !chosen || chosen.value !== "date";
      radios.forEach((radio) => { radio.disabled = !mandatoryBox.checked; });
    };
    [mandatoryBox, ...radios].forEach((input) => input.addEventListener("change", update));
    update();
  }

  document.querySelectorAll("[data-print]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  });
});
