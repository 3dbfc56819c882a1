// Shows the fields of the chosen kind only; the server clears the other kind's fields anyway.
(function () {
  var kind = document.getElementById("kind");
  if (!kind) { return; }
  var company = ["company_name", "registration_number", "vat_id", "contacts"];
  var person = ["first_name", "middle_name", "last_name", "employee_type", "title",
                "department", "manager"];
  function group(id) {
    var field = document.getElementById(id);
    return field ? field.closest(".form-group") || field : null;
  }
  function toggle() {
    var isCompany = kind.value === "company";
    company.forEach(function (id) { var g = group(id); if (g) { g.style.display = isCompany ? "" : "none"; } });
    person.forEach(function (id) { var g = group(id); if (g) { g.style.display = isCompany ? "none" : ""; } });
  }
  kind.addEventListener("change", toggle);
  if (window.jQuery) { window.jQuery(kind).on("change", toggle); }
  toggle();
})();
