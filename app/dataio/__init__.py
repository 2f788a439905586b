"""Moving data in and out of a deployment: export/import zips, `convect data`, `run --watch`."""

from app.dataio.connect import DatabaseUnreachable, check_database, redact_url
from app.dataio.export import ExportSummary, export_deployment
from app.dataio.format import ExportFormatError
from app.dataio.importer import ImportRefused, ImportSummary, import_deployment

__all__ = [
    "DatabaseUnreachable",
    "ExportFormatError",
    "ExportSummary",
    "ImportRefused",
    "ImportSummary",
    "check_database",
    "export_deployment",
    "import_deployment",
    "redact_url",
]
