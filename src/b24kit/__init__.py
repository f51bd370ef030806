"""b24kit: deploy, migrate and check Bitrix24 CRM portals from the command line."""

__version__ = "0.1.0"
