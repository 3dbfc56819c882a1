def test_dashboard_after_sign_in(maintainer_client):
    page = maintainer_client.get("/admin/")
    assert page.status_code == 200
    assert "Customers" in page.get_data(as_text=True)
