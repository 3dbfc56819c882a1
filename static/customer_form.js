// Customer form: show the fields of the chosen kind only (the server clears the other kind's
// fields anyway), and give inline contact fields labels of their own.
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
  // Flask-Admin renames the inputs of an added contact (contacts-0-first_name) but not the
  // labels, which then point at the customer's own fields: re-point each label to its input.
  function relabel(root) {
    root.querySelectorAll(".inline-field .form-group").forEach(function (g) {
      var label = g.querySelector("label");
      var input = g.querySelector("input[id], select[id], textarea[id]");
      if (label && input) { label.htmlFor = input.id; }
    });
  }
  kind.addEventListener("change", toggle);
  if (window.jQuery) { window.jQuery(kind).on("change", toggle); }
  toggle();
  relabel(document);
  var contacts = document.getElementById("contacts");
  if (contacts && window.MutationObserver) {
    new MutationObserver(function () { relabel(contacts); })
      .observe(contacts, { childList: true, subtree: true });
  }
})();
