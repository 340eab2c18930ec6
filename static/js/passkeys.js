// After django-otp-webauthn registers a key, go where the server says (the recovery codes
// after a first method, else My Profile); its own script stays on the page.
document.addEventListener("otp_webauthn.register_complete", (event) => {
  const url = event.detail && event.detail.response && event.detail.response.redirect_url;
  if (url && url.startsWith("/") && !url.startsWith("//")) window.location.assign(url);
});
