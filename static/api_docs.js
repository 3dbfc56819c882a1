// Swagger UI on the app's own OpenAPI document ("Authorize" takes an API token).
(function () {
  var root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({url: root.dataset.specUrl, dom_id: "#swagger-ui", deepLinking: true});
})();
