// The API docs page (/api/docs): Swagger UI from local files, no inline script (the CSP forbids it).
window.onload = function () {
  window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
};
