"""Customer pages beyond Flask-Admin's list and forms: delete confirmation, history, the Change
Status dialog, the photo and the Site → Building list. Each reads the customer through the
view's `get_one`, so the access policy applies (404 / 403)."""

from __future__ import annotations

from pathlib import Path

from flask import abort, current_app, flash, jsonify, redirect, request, send_file, url_for
from flask_admin import expose
from flask_admin.model.template import DeleteRowAction, EndpointLinkRowAction
from sqlalchemy import or_, select

from admin_views.base import actor, flash_errors, save_options
from admin_views.ids import parse_id
from extensions import db
from models import AuditEvent, Building, Contact, CustomerSettings, CustomerStatus, SecurityGroup
from services.customers import change_status, deletion_summary
from services.duplicates import customer_probe, find_duplicates
from services.errors import DomainError, PermissionDenied, ValidationFailed
from services.photos import photo_paths, remove_photo, store_photo
from services.portal import (
    create_portal_account,
    portal_account_of,
    reset_portal_password,
    set_portal_access_enabled,
)


class CustomerPagesMixin:
    """Adds /delete-confirm/ (what goes with a customer, what keeps it) and /history/."""

    def get_list_row_actions(self):
        actions = [a for a in super().get_list_row_actions() if not isinstance(a, DeleteRowAction)]
        actions.append(EndpointLinkRowAction("fa fa-history", ".history_view", "History"))
        if self.can_delete:
            actions.append(EndpointLinkRowAction("fa fa-trash", ".delete_confirm_view", "Delete…"))
        return actions

    @expose("/delete-confirm/")
    def delete_confirm_view(self):
        customer = self.get_one(request.args.get("id"))  # 404 / 403 by the access policy
        summary = deletion_summary(db.session, customer)
        blocked = bool(summary["requests"] or summary["computers"])
        return self.render("admin/customer_delete.html", customer=customer, summary=summary,
                           blocked=blocked)

    @expose("/buildings/")
    def buildings_view(self):
        """The buildings of one site, for the form's Building list (Site Name → Building)."""
        site_id = parse_id(request.args.get("site"))
        rows = db.session.scalars(select(Building).where(Building.site_id == site_id)
                                  .order_by(Building.name)).all() if site_id else []
        return jsonify([{"id": b.id, "text": str(b)} for b in rows])

    @expose("/status/", methods=("POST",))
    def status_view(self):
        """The Change Status dialog's form (on the details page)."""
        customer = self.get_one(request.args.get("id"))  # 404 / 403 by the access policy
        status = db.session.get(CustomerStatus, parse_id(request.form.get("status")) or 0)
        back = url_for(".details_view", id=customer.id)
        if status is None:
            flash("Choose one of the statuses.", "error")
            return redirect(back)
        try:
            change_status(db.session, customer, actor(), status, save_options(),
                          seen_version=parse_id(request.form.get("version_seen")))
        except PermissionDenied:
            abort(403)
        except ValidationFailed as exc:
            flash_errors(exc.errors)
            return redirect(back)
        flash(f"Status changed to {status.name}.", "success")
        return redirect(back)

    @expose("/photo/", methods=("POST",))
    def photo_view(self):
        """Upload (or remove) the customer's photo from the details page."""
        customer = self.get_one(request.args.get("id"))
        storage = Path(current_app.config["PHOTO_DIR"])
        try:
            if request.form.get("remove"):
                remove_photo(db.session, customer, actor(), storage)
                flash("The photo was removed.", "success")
            else:
                upload = request.files.get("photo")
                store_photo(db.session, customer, actor(), upload.read() if upload else b"", storage)
                flash("The photo was saved.", "success")
        except PermissionDenied:
            abort(403)
        except ValidationFailed as exc:
            db.session.rollback()
            flash_errors(exc.errors)
        except DomainError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        return redirect(url_for(".details_view", id=customer.id))

    @expose("/photo-file/<int:customer_id>/<size>")
    def photo_file_view(self, customer_id: int, size: str):
        """A customer's photo or thumbnail, for those who may view the customer."""
        customer = self.get_one(customer_id)
        if not customer.photo or size not in ("full", "thumb"):
            abort(404)
        full, thumb = photo_paths(Path(current_app.config["PHOTO_DIR"]), customer.photo)
        path = full if size == "full" else thumb
        if not path.exists():
            abort(404)
        return send_file(path, max_age=0)

    @expose("/portal/", methods=("GET", "POST"))
    def portal_view(self):
        """Portal access: create credentials, reset the password, disable or enable sign-in."""
        customer = self.get_one(request.args.get("id"))
        errors: dict[str, list[str]] = {}
        if request.method == "POST":
            action = request.form.get("action")
            try:
                if action == "create":
                    group = db.session.get(SecurityGroup, parse_id(request.form.get("security_group")) or 0)
                    create_portal_account(db.session, customer, actor(),
                                          username=request.form.get("username", ""),
                                          password=request.form.get("password", ""), security_group=group)
                elif action == "reset":
                    reset_portal_password(db.session, customer, actor(), request.form.get("password", ""))
                elif action in ("disable", "enable"):
                    set_portal_access_enabled(db.session, customer, actor(), action == "enable")
                else:
                    raise DomainError("Choose one of the page's buttons.")
            except PermissionDenied:
                abort(403)
            except ValidationFailed as exc:
                db.session.rollback()
                errors = exc.errors
            except DomainError as exc:
                db.session.rollback()
                flash(str(exc), "error")
            else:
                flash({"create": "Portal access created.", "reset": "The password was reset.",
                       "disable": "Portal sign-in disabled.", "enable": "Portal sign-in enabled."}[action],
                      "success")
                return redirect(url_for(".portal_view", id=customer.id))
        groups = db.session.scalars(select(SecurityGroup).order_by(SecurityGroup.name)).all()
        return self.render("admin/customer_portal.html", customer=customer, errors=errors, groups=groups,
                           account=portal_account_of(db.session, customer),
                           typed={k: v for k, v in request.form.items() if k != "password"})

    def render(self, template, **kwargs):
        if template == self.details_template:
            statuses = select(CustomerStatus).order_by(CustomerStatus.name)
            kwargs["statuses"] = db.session.scalars(statuses).all()
            model = kwargs["model"]
            # An existing duplicate pair: offer to merge it (services.merge).
            probe = customer_probe(model, save_options().phone_region)
            kwargs["possible_duplicates"] = [
                c for c in find_duplicates(db.session, actor(), probe, exclude_customer_id=model.id)
                if c.visible and c.record == "customer"]
        return super().render(template, **kwargs)

    @expose("/history/")
    def history_view(self):
        customer = self.get_one(request.args.get("id"))
        contact_ids = select(Contact.id).where(Contact.customer_id == customer.id)
        settings_ids = select(CustomerSettings.id).where(CustomerSettings.customer_id == customer.id)
        events = db.session.scalars(
            select(AuditEvent).where(or_(
                (AuditEvent.entity_type == "customer") & (AuditEvent.entity_id == customer.id),
                (AuditEvent.entity_type == "contact") & AuditEvent.entity_id.in_(contact_ids),
                (AuditEvent.entity_type == "customersettings") & AuditEvent.entity_id.in_(settings_ids),
            )).order_by(AuditEvent.id.desc()).limit(500)
        ).all()
        return self.render("admin/customer_history.html", customer=customer, events=events)
