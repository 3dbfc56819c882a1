"""SQLAlchemy models, one module per aggregate. Importing this package registers them all."""

from models.audit import AuditEvent
from models.base import Base, db
from models.bulk_import import BulkImport as BulkImport  # explicit re-export
from models.computer import Computer
from models.contact import Contact
from models.customer import Customer, customer_operator, customer_workgroup
from models.directory import DirectorySource, DirectorySyncRun
from models.discussion import RequestAttachment, RequestComment, RequestStatusChange
from models.import_mapping import ImportMapping as ImportMapping  # explicit re-export
from models.lookups import (
    Building,
    CustomerStatus,
    Department,
    SecurityGroup,
    Site,
    SlaLevel,
    Team,
    Workgroup,
)
from models.mail import IncomingMail, OutgoingMail, UsedLink
from models.name_vocabulary import NameWord, NameWordVariant
from models.operator import ApiToken, Operator, operator_team
from models.portal import PortalAccount
from models.request import Request, request_contact
from models.search_index import ContactSearchToken, CustomerSearchToken
from models.settings import CustomerSettings, GlobalSettings
from models.sign_in import SignInThrottle as SignInThrottle  # explicit re-export
from models.wizard import WizardDraft

__all__ = [
    "ApiToken", "AuditEvent", "Base", "Building", "Computer", "Contact", "ContactSearchToken",
    "Customer", "CustomerSearchToken", "CustomerSettings", "CustomerStatus", "Department",
    "DirectorySource", "DirectorySyncRun", "GlobalSettings", "IncomingMail", "NameWord", "NameWordVariant",
    "Operator", "OutgoingMail", "PortalAccount", "Request", "RequestAttachment", "RequestComment",
    "RequestStatusChange", "SecurityGroup", "Site", "SlaLevel", "Team", "UsedLink", "WizardDraft",
    "Workgroup",
    "customer_operator", "customer_workgroup", "db", "operator_team", "request_contact",
]
