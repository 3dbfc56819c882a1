"""Django models over Customer Desk's own tables (unmanaged: Django creates and changes nothing),
with the columns the customers and contacts lists show. Imported only once django_admin.py has
configured Django."""

from django.db import models


class Named(models.Model):
    name = models.CharField(max_length=100)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class CustomerStatus(Named):
    class Meta:
        managed = False
        db_table = "customer_status"


class SlaLevel(Named):
    class Meta:
        managed = False
        db_table = "sla_level"


class Operator(models.Model):
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)

    class Meta:
        managed = False
        db_table = "operator"

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"


class Customer(models.Model):
    photo = models.CharField(max_length=255, null=True)
    display_name = models.CharField(max_length=255)
    sort_name = models.CharField(max_length=255)
    kind = models.CharField(max_length=20)
    status = models.ForeignKey(CustomerStatus, on_delete=models.DO_NOTHING)
    email = models.CharField(max_length=254, null=True)
    primary_phone = models.CharField(max_length=40, null=True)
    sla_level = models.ForeignKey(SlaLevel, on_delete=models.DO_NOTHING, null=True)
    operators = models.ManyToManyField(Operator, through="CustomerOperator")
    updated_at = models.DateTimeField()
    merged_into_id = models.IntegerField(null=True)  # a merged-away customer: on no list

    class Meta:
        managed = False
        db_table = "customer"

    def __str__(self) -> str:
        return self.display_name


class CustomerOperator(models.Model):
    # Django wants one primary key column; the table's key is (customer_id, operator_id).
    customer = models.ForeignKey(Customer, on_delete=models.DO_NOTHING, primary_key=True)
    operator = models.ForeignKey(Operator, on_delete=models.DO_NOTHING)

    class Meta:
        managed = False
        db_table = "customer_operator"


class Contact(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.DO_NOTHING)
    display_name = models.CharField(max_length=200)
    sort_name = models.CharField(max_length=200)
    is_main = models.BooleanField()
    email = models.CharField(max_length=254, null=True)
    phone = models.CharField(max_length=40, null=True)
    title = models.CharField(max_length=128, null=True)

    class Meta:
        managed = False
        db_table = "contact"

    def __str__(self) -> str:
        return self.display_name
