// Pre-fills the sign-up form's time zone from the browser; the form works the same without it.
(function () {
  var field = document.getElementById("timezone");
  if (!field || field.value !== "UTC") return;
  try { field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { /* keep UTC */ }
})();
