// Starts the vendored swagger-ui on /api/docs/swagger/ (no inline script: the pages' CSP allows none).
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: true });
});
