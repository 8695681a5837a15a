"""A fake of the Azure DNS Record Sets REST API and the Microsoft Entra ID token endpoint, for the lab. See
``__main__.py``."""
