"""The dashboard: admin-only system functions (`_system/dashboard:*`) and its built assets."""

from app.dashboard.assets import ASSETS, asset_path
from app.dashboard.functions import SYSTEM_MODULE, dashboard_functions

__all__ = ["ASSETS", "SYSTEM_MODULE", "asset_path", "dashboard_functions"]
