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
  // Site Name → Building: offer only the chosen site's buildings (the server checks the pair too).
  var site = document.getElementById("site");
  var building = document.getElementById("building");
  function loadBuildings() {
    if (!site || !building) { return; }
    var chosen = building.value;
    if (!site.value || site.value === "__None") { return; }
    fetch(building.form.action.replace(/\/(new|edit)\/.*$/, "/buildings/") + "?site=" +
          encodeURIComponent(site.value), {credentials: "same-origin"})
      .then(function (r) { return r.json(); })
      .then(function (rows) {
        var blank = building.querySelector("option[value='__None']");
        building.innerHTML = "";
        if (blank) { building.appendChild(blank); }
        rows.forEach(function (row) {
          var option = document.createElement("option");
          option.value = String(row.id);
          option.textContent = row.text;
          building.appendChild(option);
        });
        var kept = rows.some(function (row) { return String(row.id) === chosen; });
        building.value = kept ? chosen : (blank ? "__None" : "");
        if (window.jQuery) { window.jQuery(building).trigger("change"); }
      });
  }
  if (site && window.jQuery) { window.jQuery(site).on("change", loadBuildings); }
  loadBuildings();
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
